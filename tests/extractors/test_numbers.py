"""cryokb_numbers: every number shape of a results section, resolved to its value."""

import pytest

from extractors.numbers import Number, find_numbers, parse_value


def only(text):
    """The single number found in ``text`` (the test fails if there are more or none)."""
    found = find_numbers(text)
    assert len(found) == 1, [n.text for n in found]
    return found[0]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Fifty-four patients were treated.", 54),
        ("twenty one lesions", 21),
        ("Twenty-five of the lesions", 25),
        ("three cryoprobes", 3),
        ("in a single session", 1),
        ("one hundred and twelve ablations", 112),
        ("Nineteen children", 19),
        ("a cohort of 1,234 patients", 1234),
        ("a mean of 7.5", 7.5),
    ],
)
def test_plain_numbers_in_words_and_digits(text, value):
    number = only(text)
    assert number.kind == "number"
    assert number.value == value
    assert type(number.value) is type(value)


@pytest.mark.parametrize("text", ["6%", "6 %", "6 per cent", "6 percent", "six per cent"])
def test_percentages_written_every_way(text):
    number = only(f"minor complications in {text}")
    assert (number.kind, number.value) == ("percent", 6)


def test_decimal_percent_keeps_its_decimals():
    assert only("a rate of 92.1%").value == 92.1


@pytest.mark.parametrize("text, kind, value", [
    ("a rate of 92·1%", "percent", 92.1),
    ("decreased by 0·72 points", "number", 0.72),
    ("a mean of 6·2 ± 1·4", "mean_sd", 6.2),
    ("median 14·5 months (IQR 8·0-20·5)", "median_iqr", 14.5),
])
def test_a_raised_decimal_dot_is_a_decimal_point_and_the_text_stays_as_written(text, kind, value):
    number = only(text)
    assert (number.kind, number.value) == (kind, value)
    assert number.text == text[number.start : number.end] and "·" in number.text


def test_a_raised_dot_between_words_or_numbers_and_spaces_is_no_decimal():
    assert [n.value for n in find_numbers("in 12 · 3 sessions")] == [12, 3]


@pytest.mark.parametrize(
    "text, value, total",
    [
        ("in 48 of 50 patients", 48, 50),
        ("in 48 out of 50 patients", 48, 50),
        ("in three of the five patients", 3, 5),
        ("(48/50)", 48, 50),
        ("(48 / 50)", 48, 50),
    ],
)
def test_fractions(text, value, total):
    number = only(text)
    assert (number.kind, number.value, number.total) == ("fraction", value, total)


def test_a_slash_date_is_not_a_fraction():
    assert all(n.kind != "fraction" for n in find_numbers("seen on 12/05/2019"))


@pytest.mark.parametrize(
    "text, low, high",
    [("2-5 lesions", 2, 5), ("2–5 lesions", 2, 5), ("2 to 5 lesions", 2, 5), ("between 2 and 5 lesions", 2, 5),
     ("ranging from 12 to 40 mm", 12, 40)],
)
def test_ranges(text, low, high):
    number = only(text)
    assert (number.kind, number.low, number.high) == ("range", low, high)


def test_a_change_from_one_value_to_another_is_not_a_range():
    found = find_numbers("VAS decreased from 2 to 5")
    assert [(n.kind, n.value) for n in found] == [("number", 2), ("number", 5)]


def test_a_hyphenated_number_word_is_not_a_range():
    assert only("Thirty-one tumours").value == 31


@pytest.mark.parametrize("text, value", [("ninety-six percent", 96), ("Twenty-five per cent", 25)])
def test_a_hyphenated_number_word_before_percent_is_a_percentage(text, value):
    assert (only(text).kind, only(text).value) == ("percent", value)


def test_a_range_of_two_number_words_is_still_a_range():
    number = only("eighty-ninety percent")
    assert (number.kind, number.low, number.high) == ("percent_range", 80, 90)


@pytest.mark.parametrize("text", ["7.5 ± 1.2", "7.5±1.2", "7.5 +/- 1.2", "7.5 (SD 1.2)", "7.5 (SD, 1.2)"])
def test_mean_and_standard_deviation(text):
    number = only(f"mean VAS {text} before treatment")
    assert (number.kind, number.value, number.sd) == ("mean_sd", 7.5, 1.2)


@pytest.mark.parametrize(
    "text, kind, centre, low, high",
    [
        ("median follow-up 14 months (IQR 8-20)", "median_iqr", 14, 8, 20),
        ("median follow-up of 14 months (interquartile range, 8–20)", "median_iqr", 14, 8, 20),
        ("median 14 (range 3-36) months", "median_range", 14, 3, 36),
        ("median follow-up, 26 months (range, 12-84 months)", "median_range", 26, 12, 84),
        ("mean age 45 years (range, 19-73)", "mean_range", 45, 19, 73),
    ],
)
def test_centre_with_spread(text, kind, centre, low, high):
    number = only(text)
    assert (number.kind, number.value, number.low, number.high) == (kind, centre, low, high)


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("(p < 0.001)", "p_value", 0.001),
        ("(P < .001)", "p_value", 0.001),
        ("(P value = 0.002)", "p_value", 0.002),
        ("(p-value < 0.01)", "p_value", 0.01),
        ("(n = 23)", "n", 23),
        ("(n=23)", "n", 23),
        ("between 2015 and 2021", "range", 2015),
        ("a 45-year-old woman", "age", 45),
        ("treated in 2019", "year", 2019),
    ],
)
def test_noise_is_labelled_so_that_rules_can_skip_it(text, kind, value):
    number = only(text)
    assert (number.kind, number.value) == (kind, value)


@pytest.mark.parametrize("text", ["SF-36 scores", "the L4-5 level", "3D printing", "T2-weighted images", "CD34"])
def test_numbers_inside_names_are_not_numbers(text):
    assert find_numbers(text) == []


def test_units_tell_time_from_measurements_and_counts():
    six_weeks, five_mm, three_patients = find_numbers("at 6 weeks, 5 mm margin, 3 patients")
    assert six_weeks.is_time and not six_weeks.is_measurement
    assert five_mm.is_measurement and not five_mm.is_time
    assert not three_patients.is_time and not three_patients.is_measurement
    assert three_patients.unit == "patients"


def test_offsets_point_into_the_text():
    text = "Clinical success was achieved in 48 of 50 patients (96%)."
    for number in find_numbers(text):
        assert text[number.start : number.end] == number.text


def test_parse_value_reads_words_and_digits():
    assert parse_value("Fifty-four") == 54
    assert parse_value("1,234") == 1234
    assert parse_value("7.0") == 7.0 and isinstance(parse_value("7.0"), float)


def test_component_writes_number_spans(nlp):
    doc = nlp("Technical success was 100% (48/50); mean VAS fell from 7.5±1.2 to 0.6.")
    numbers = {span.text: span._.number for span in doc.spans["cryokb_numbers"]}
    assert isinstance(numbers["48/50"], Number)
    assert numbers["48/50"].total == 50
    assert numbers["100%"].kind == "percent"
    assert numbers["7.5±1.2"].kind == "mean_sd"
    assert numbers["0.6"].value == 0.6


def test_prefix_guided_scans_find_what_a_full_scan_finds(gold_dir):
    """The cue scanners try their patterns only where a word starts with a derived prefix;
    over every gold abstract that must give exactly the matches of a full regex scan."""
    from extractors import design, outcomes
    from extractors.numbers import scan
    from ingest.model import Article
    from ingest.pubmed_xml import iter_records

    scanners = [
        (outcomes.rules().cues_low, outcomes.rules().cue_finder),
        (design.rules().combined, design.rules().finder),
    ]
    texts = [
        outcomes.lower_text(a.text)
        for path in sorted(gold_dir.glob("*.xml"))
        for a in iter_records(path)
        if isinstance(a, Article)
    ]
    assert texts
    for pattern, finder in scanners:
        assert finder is not None
        for text in texts:
            fast = [(m.span(), m.lastgroup) for m in scan(pattern, finder, text)]
            full = [(m.span(), m.lastgroup) for m in pattern.finditer(text)]
            assert fast == full


def test_bad_rules_file_raises_a_typed_error_naming_the_file(rules_file):
    from extractors import numbers

    rules = rules_file(numbers._rules, "numbers.json", '{"numbers": {"units": {}, "surprise": 1}}')
    with pytest.raises(numbers.NumberRulesError, match="numbers.json"):
        rules()


@pytest.mark.parametrize("text", [
    "Mean VAS decreased from 8 to 3 [22].",
    "as reported earlier [4, 7-9], pain decreased from 8 to 3",
    "Mean VAS decreased from 8 to 3 (Fig. 2).",
    "Mean VAS decreased from 8 to 3 (see Supplementary Table 4).",
    "Mean VAS decreased from 8 to 3 (Figures 2A and 3).",
])
def test_citations_and_figure_numbers_are_not_quantities(text):
    assert [n.value for n in find_numbers(text)] == [8, 3]


@pytest.mark.parametrize("text, values", [
    ("As shown in Table 2, 14 patients", [14]),
    ("(Table 2, 3 patients)", [3]),
    ("see Figure 3, 6 patients and (Tables 1, 2)", [6]),
])
def test_a_number_after_a_figure_or_table_reference_is_a_quantity(text, values):
    assert [n.value for n in find_numbers(text)] == values


def test_a_bracketed_count_or_interval_is_still_a_number():
    assert [n.text for n in find_numbers("local control [95% CI 71-95] in 12 [of 14] tumours")][:2] == ["95%", "71-95"]
    assert [n.value for n in find_numbers("tumours [n = 12]")] == [12]


def test_a_number_before_a_non_breaking_space_keeps_its_unit():
    assert only("Twenty\u00a0patients were treated").unit == "patients"
