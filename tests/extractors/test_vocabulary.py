"""data/vocabulary.json: every schema key, nothing else, each entry complete and valid."""

import copy
import json

import pytest

from extractors.vocabulary import (
    Vocabulary,
    VocabularyError,
    load_data,
    load_vocabulary,
    schema_keys_from_markdown,
)


def schema_lists(schema_path):
    """The key lists of the schema: from EVIDENCE_SCHEMA.md when present, else data/."""
    kept = {field: set(keys) for field, keys in load_data("schema_keys.json")["fields"].items()}
    if schema_path.is_file():
        return schema_keys_from_markdown(schema_path.read_text(encoding="utf-8")), kept
    return kept, kept


def test_the_kept_key_list_matches_the_schema_document(schema_path):
    if not schema_path.is_file():
        pytest.skip(f"{schema_path} not present")
    parsed, kept = schema_lists(schema_path)
    assert parsed == kept


def test_the_schema_parser_reads_the_lists_a_reader_sees(schema_path):
    if not schema_path.is_file():
        pytest.skip(f"{schema_path} not present")
    parsed, _ = schema_lists(schema_path)
    assert parsed["approach"] == {"percutaneous", "intraoperative"}
    assert {"osteoid_osteoma", "lipomatous_tumor"} <= parsed["lesion_types"]
    assert {"spine", "head_neck", "extremity_soft_tissue"} <= parsed["anatomic_sites"]
    assert parsed["pain_scales"] == {"vas", "nrs", "bpi", "other"}


@pytest.mark.parametrize("field", sorted(load_data("schema_keys.json")["fields"]))
def test_vocabulary_and_schema_hold_the_same_keys(field, schema_path):
    parsed, kept = schema_lists(schema_path)
    vocabulary = load_vocabulary()
    assert set(vocabulary.keys(field)) == parsed[field] == kept[field]


def test_no_field_outside_the_schema(schema_path):
    _, kept = schema_lists(schema_path)
    assert set(load_vocabulary().fields) == set(kept)


def test_every_entry_has_a_definition_and_words():
    for field, entries in load_vocabulary().fields.items():
        for key, entry in entries.items():
            assert len(entry.definition) > 15, (field, key)
            assert entry.synonyms, (field, key)
            assert entry.label, (field, key)


def test_spelling_variants_and_plurals_are_listed():
    vocabulary = load_vocabulary()
    desmoid = vocabulary.entry("lesion_types", "desmoid_tumor").phrases
    assert {"desmoid tumour", "desmoid tumor", "desmoid tumours", "desmoid tumors"} <= set(desmoid)
    hemangioma = vocabulary.entry("lesion_types", "hemangioma").phrases
    assert {"haemangioma", "hemangioma", "vertebral haemangiomas"} <= set(hemangioma)
    cbct = vocabulary.entry("guidance", "cbct").phrases
    assert {"cone-beam ct", "cone beam ct"} <= set(cbct)
    assert "metastases" in " ".join(vocabulary.entry("lesion_types", "bone_metastasis").phrases)


def test_identifiers_are_well_formed_or_null():
    vocabulary = load_vocabulary()
    assert vocabulary.entry("lesion_types", "osteoid_osteoma").mesh == "D010017"
    assert vocabulary.entry("guidance", "ct").mesh == "D014057"
    for entries in vocabulary.fields.values():
        for entry in entries.values():
            assert entry.mesh is None or entry.mesh.startswith("D")
            assert entry.ncit is None or entry.ncit.startswith("C")


def raw_vocabulary():
    return copy.deepcopy(load_data("vocabulary.json"))


def test_a_missing_definition_is_refused_with_the_entry_named():
    raw = raw_vocabulary()
    del raw["fields"]["lesion_types"]["chordoma"]["definition"]
    with pytest.raises(VocabularyError, match=r"lesion_types\.chordoma: missing attribute 'definition'"):
        Vocabulary(raw)


def test_an_invented_looking_identifier_is_refused():
    raw = raw_vocabulary()
    raw["fields"]["guidance"]["mri"]["mesh"] = "M12"
    with pytest.raises(VocabularyError, match=r"guidance\.mri: mesh 'M12'"):
        Vocabulary(raw)


def test_an_entry_filed_under_the_wrong_field_is_refused():
    raw = raw_vocabulary()
    raw["fields"]["treatments"]["surgery"]["field"] = "approach"
    with pytest.raises(VocabularyError, match=r"treatments\.surgery"):
        Vocabulary(raw)


def test_an_unknown_attribute_is_refused():
    raw = raw_vocabulary()
    raw["fields"]["anatomic_sites"]["rib"]["synonym"] = ["costa"]
    with pytest.raises(VocabularyError, match=r"anatomic_sites\.rib: unknown attribute"):
        Vocabulary(raw)


def test_the_top_level_shape_is_checked():
    with pytest.raises(VocabularyError, match="version"):
        Vocabulary({"fields": {}})


def test_the_file_is_plain_json_with_a_version():
    raw = raw_vocabulary()
    assert isinstance(raw["version"], str)
    json.dumps(raw)


def test_a_rule_file_missing_a_section_is_named():
    from extractors.vocabulary import require

    with pytest.raises(VocabularyError, match=r"concept_rules.json: missing 'guidance.window'"):
        require({"guidance": {}}, "concept_rules.json", "guidance.window")
