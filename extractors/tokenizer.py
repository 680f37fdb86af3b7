"""Tokenizer rules for clinical abstracts.

spaCy's English tokenizer keeps "7.5±1.2", "48/50", "n=23" and "p<0.001" as single
tokens. The number, sample-size and outcome rules match on tokens, so these must be
split into their parts; and abbreviations ending in a period ("Fig.", "approx.") must
stay one token so that the sentence rule does not have to guess about them.
"""

from __future__ import annotations

from spacy.language import Language
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

# Split between two numbers or a number and a letter: 7.5±1.2, 48/50, n=23, p<0.001.
_INFIXES = [
    r"±",
    r"\+/-",
    r"(?<=[0-9])/(?=[0-9])",
    r"(?<=[A-Za-z])/(?=[0-9])",  # "9 patients/12 lesions"
    r"(?<=[A-Za-z0-9)])[=<>≤≥](?=[A-Za-z0-9.(])",
    r"(?<=[A-Za-z]),(?=[0-9])",
    r"(?<=[0-9]);(?=[A-Za-z0-9])",
]
_PREFIXES = [r"[≥≤<>~±=]"]
_SUFFIXES = [r"(?<=[0-9])(?:h|hr|hrs|wk|wks|mo|mos|yr|yrs|min)"]

# Period-final abbreviations of abstracts that are never a sentence end by themselves.
ABBREVIATIONS = (
    "approx.", "Approx.", "Fig.", "Figs.", "fig.", "No.", "Nos.", "no.", "vs.", "Vs.",
    "et al.", "al.", "e.g.", "i.e.", "Dr.", "Drs.", "Prof.", "Mr.", "Mrs.", "Ms.",
    "resp.", "cf.", "ca.", "incl.", "min.", "max.", "mo.", "yr.", "yrs.", "wk.", "wks.",
    "Ref.", "ref.", "Eq.", "Tab.", "vol.", "Vol.", "pp.", "St.", "Jr.", "Inc.",
)


def customize_tokenizer(nlp: Language) -> Language:
    """Add the clinical infixes, prefixes, suffixes and abbreviation exceptions to ``nlp``.

    Safe to call more than once: the extra rules are only added when missing.
    """
    tokenizer = nlp.tokenizer
    defaults = nlp.Defaults
    infixes = list(defaults.infixes or []) + _INFIXES
    prefixes = list(defaults.prefixes or []) + _PREFIXES
    suffixes = list(defaults.suffixes or []) + _SUFFIXES
    tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    tokenizer.prefix_search = compile_prefix_regex(prefixes).search
    tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    tokenizer.add_special_case("+/-", [{"ORTH": "+/-"}])
    for abbreviation in ABBREVIATIONS:
        if " " in abbreviation:
            continue
        tokenizer.add_special_case(abbreviation, [{"ORTH": abbreviation}])
    return nlp
