"""cryokb_sentences: a rule over tokens that survives the abbreviations of abstracts."""

import pytest


def sentences(nlp, text):
    return [s.text.strip() for s in nlp(text).sents]


@pytest.mark.parametrize(
    "text",
    [
        "Small lesions (e.g. osteoid osteoma) were frozen.",
        "Benign tumours, i.e. those without atypia, were included.",
        "Cryoablation vs. radiofrequency ablation was compared.",
        "The ice ball measured approx. 3 cm in diameter.",
        "Probe positions are shown in Fig. 2 of the report.",
        "Smith et al. described the technique in dogs.",
        "Patient No. 3 had a sacral lesion.",
        "Mean pain fell from 7.5 to 1.2 points.",
        "Dr. Moreau performed every procedure.",
        "Protocol by J. K. Novak was followed.",
        "Cryoprobes (IceRod, Galil) were used.",
    ],
)
def test_one_sentence_stays_one(nlp, text):
    assert sentences(nlp, text) == [text]


def test_sentence_ends_split(nlp):
    text = "Twelve patients were treated. All had pain! Was it safe? Yes."
    assert sentences(nlp, text) == ["Twelve patients were treated.", "All had pain!", "Was it safe?", "Yes."]


def test_closing_bracket_after_period_stays_with_its_sentence(nlp):
    text = "Pain resolved (all patients.) Then follow-up began."
    assert sentences(nlp, text) == ["Pain resolved (all patients.)", "Then follow-up began."]


def test_a_new_line_always_starts_a_sentence(nlp):
    text = "Cryoablation of osteoid osteoma\n\nPurpose: to report results\nMethods: twenty patients"
    assert sentences(nlp, text) == [
        "Cryoablation of osteoid osteoma",
        "Purpose: to report results",
        "Methods: twenty patients",
    ]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\r"])
def test_a_line_or_paragraph_separator_starts_a_sentence(nlp, separator):
    text = f"Cryoablation was performed in nine patients.{separator}Technical success was 100%."
    assert sentences(nlp, text) == ["Cryoablation was performed in nine patients.", "Technical success was 100%."]


@pytest.mark.parametrize("space", ["\u00a0", "  ", "\u2009 "])
def test_a_sentence_ends_before_a_space_the_tokenizer_keeps(nlp, space):
    text = f"Technical success was 100%.{space}Pain response was 78%."
    assert sentences(nlp, text) == ["Technical success was 100%.", "Pain response was 78%."]


def test_lower_case_after_a_period_does_not_start_a_sentence(nlp):
    assert len(sentences(nlp, "Lesions were 2 cm. in size on average.")) == 1


def test_single_token_and_empty_texts(nlp):
    assert sentences(nlp, "Cryoablation") == ["Cryoablation"]
    assert list(nlp("").sents) == []
