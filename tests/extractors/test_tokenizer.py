"""The clinical tokenizer splits numbers, ratios and signs the number rules match on."""

import pytest
import spacy

from extractors.tokenizer import customize_tokenizer


@pytest.fixture(scope="module")
def tokenizer_nlp():
    return customize_tokenizer(spacy.blank("en"))


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("7.5±1.2", ["7.5", "±", "1.2"]),
        ("VAS fell from 7.5±1.2 to 1.1±0.8.", ["VAS", "fell", "from", "7.5", "±", "1.2", "to", "1.1", "±", "0.8", "."]),
        ("6.4 +/- 2.1", ["6.4", "+/-", "2.1"]),
        ("6.4+/-2.1", ["6.4", "+/-", "2.1"]),
        ("48/50", ["48", "/", "50"]),
        ("n=23", ["n", "=", "23"]),
        ("(n=30)", ["(", "n", "=", "30", ")"]),
        ("(n = 30)", ["(", "n", "=", "30", ")"]),
        ("(n=12/15)", ["(", "n", "=", "12", "/", "15", ")"]),
        ("p<0.001", ["p", "<", "0.001"]),
        ("≥3 lesions", ["≥", "3", "lesions"]),
        ("T12-L1", ["T12", "-", "L1"]),
        ("L5/S1", ["L5", "/", "S1"]),
        ("CT-guided", ["CT", "-", "guided"]),
        ("6%", ["6", "%"]),
        ("(96%).", ["(", "96", "%", ")", "."]),
        ("3-month", ["3", "-", "month"]),
        ("range,2-10", ["range", ",", "2", "-", "10"]),
        ("24h", ["24", "h"]),
        ("3.2cm", ["3.2", "cm"]),
    ],
)
def test_clinical_text_is_split_into_parts(tokenizer_nlp, text, tokens):
    assert [t.text for t in tokenizer_nlp(text)] == tokens


@pytest.mark.parametrize("text", ["e.g.", "i.e.", "vs.", "approx.", "Fig.", "et al.", "No.", "Dr."])
def test_period_abbreviations_stay_whole(tokenizer_nlp, text):
    doc = tokenizer_nlp(f"see {text} 2")
    assert text.split()[-1] in [t.text for t in doc]
    assert "." not in [t.text for t in doc]


def test_words_and_plain_numbers_are_left_alone(tokenizer_nlp):
    assert [t.text for t in tokenizer_nlp("and/or 1990s 12.5")] == ["and/or", "1990s", "12.5"]


def test_customizing_twice_changes_nothing(tokenizer_nlp):
    before = [t.text for t in tokenizer_nlp("n=23 (7.5±1.2)")]
    customize_tokenizer(tokenizer_nlp)
    assert [t.text for t in tokenizer_nlp("n=23 (7.5±1.2)")] == before
