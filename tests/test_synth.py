"""The benchmark record generator: valid PubMed XML, reproducible, varied, streamed."""

import gzip
import hashlib
import importlib.util
import inspect
import re
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree


def _load_synth():
    """tests/ is not a package, so load the benchmark helper from its file."""
    name = "cryokb_bench_synth"
    if name not in sys.modules:
        location = Path(__file__).parent / "benchmarks" / "synth.py"
        spec = importlib.util.spec_from_file_location(name, location)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


synth = _load_synth()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """300 records written once and parsed with lxml, shared by the structure tests."""
    path = tmp_path_factory.mktemp("synth") / "synth300.xml"
    synth.write_pubmed_xml(path, 300, seed=7)
    return path, etree.parse(str(path))


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_file_is_pubmed_xml_with_n_records_and_unique_consecutive_pmids(written):
    path, tree = written
    assert tree.getroot().tag == "PubmedArticleSet"
    assert tree.docinfo.doctype.startswith("<!DOCTYPE PubmedArticleSet PUBLIC")
    pmids = tree.xpath("/PubmedArticleSet/PubmedArticle/MedlineCitation/PMID/text()")
    assert len(pmids) == 300
    assert len(set(pmids)) == 300
    assert pmids[0] == "80000001" and pmids[-1] == "80000300"
    assert path.read_bytes().startswith(b'<?xml version="1.0" ?>\n<!DOCTYPE')


def test_xml_text_matches_what_iter_synthetic_articles_yields(written):
    _, tree = written
    expected = list(synth.iter_synthetic_articles(300, seed=7))
    for element, article in zip(tree.iter("PubmedArticle"), expected, strict=True):
        assert element.findtext("MedlineCitation/PMID") == article["pmid"]
        assert element.findtext(".//ArticleTitle") == article["title"]
        sections = [s.text for s in element.iter("AbstractText")]
        assert "\n".join(sections) == article["abstract"]
        types = [t.text for t in element.iter("PublicationType")]
        assert types == article["publication_types"]


def test_metadata_is_realistic(written):
    _, tree = written
    years = set()
    for element in tree.iter("PubmedArticle"):
        authors = element.findall(".//AuthorList/Author")
        assert 2 <= len(authors) <= 8
        assert all(a.findtext("AffiliationInfo/Affiliation") for a in authors)
        uis = [d.get("UI") for d in element.iter("DescriptorName")]
        assert uis and all(re.fullmatch(r"D\d{6}", ui) for ui in uis)
        assert "D006801" in uis  # Humans
        assert element.findtext(".//ArticleId[@IdType='doi']").startswith("10.99999/")
        year = int(element.findtext(".//JournalIssue/PubDate/Year"))
        assert 1990 <= year <= 2025
        years.add(year)
    assert len(years) > 20, "publication years should spread over the whole range"


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    synth.write_pubmed_xml(tmp_path / "a.xml", 120, seed=3)
    synth.write_pubmed_xml(tmp_path / "b.xml", 120, seed=3)
    synth.write_pubmed_xml(tmp_path / "c.xml", 120, seed=4)
    assert _digest(tmp_path / "a.xml") == _digest(tmp_path / "b.xml")
    assert _digest(tmp_path / "a.xml") != _digest(tmp_path / "c.xml")


def test_record_i_does_not_depend_on_n():
    small = list(synth.iter_synthetic_articles(40, seed=1))
    large = list(synth.iter_synthetic_articles(400, seed=1))
    assert large[:40] == small


def test_gzip_output_holds_the_same_document(tmp_path):
    synth.write_pubmed_xml(tmp_path / "plain.xml", 50, seed=2)
    synth.write_pubmed_xml(tmp_path / "packed.xml.gz", 50, seed=2, gzip=True)
    with gzip.open(tmp_path / "packed.xml.gz", "rb") as handle:
        assert handle.read() == (tmp_path / "plain.xml").read_bytes()


def test_abstracts_are_150_to_300_words_and_all_different():
    articles = list(synth.iter_synthetic_articles(2000, seed=0))
    lengths = [len(a["abstract"].split()) for a in articles]
    assert min(lengths) >= 150 and max(lengths) <= 300
    assert len({a["abstract"] for a in articles}) == 2000
    assert len({a["title"] for a in articles}) > 1500


def test_about_one_in_five_records_is_off_topic():
    records = list(synth.iter_synthetic_records(2000, seed=0))
    share = Counter(r["topic"] for r in records)["off"] / len(records)
    assert 0.15 <= share <= 0.25
    off_text = " ".join(r["title"] for r in records if r["topic"] == "off")
    for other_use in ("renal", "atrial fibrillation", "knee", "warts"):
        assert other_use in off_text.lower()


def test_on_topic_texts_give_an_extractor_work_to_do():
    articles = list(synth.iter_synthetic_articles(1000, seed=5))
    text = " ".join(a["title"] + " " + a["abstract"] for a in articles)
    for lesion in ("osteoid osteoma", "desmoid", "bone metastases", "chordoma",
                   "giant cell tumour", "venous malformations", "myeloma"):
        assert lesion in text
    assert re.search(r"decreased from \d\.\d (before treatment )?to \d\.\d at \d+ \w+", text)
    assert re.search(r"in \d+ of \d+ patients \(\d+%\)", text)
    assert "No major complications occurred" in text
    assert re.search(r"Local tumour control at 1 year was \d+%", text)
    assert any("\n" in a["abstract"] for a in articles), "some abstracts are structured"


def test_records_are_produced_lazily():
    assert inspect.isgenerator(synth.iter_synthetic_articles(10))
    assert inspect.isgenerator(synth.iter_synthetic_records(10))


def _peak_memory_of_writing(path, n):
    tracemalloc.start()
    try:
        synth.write_pubmed_xml(path, n, seed=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_when_writing_ten_times_more_records(tmp_path):
    small = _peak_memory_of_writing(tmp_path / "small.xml", 200)
    large = _peak_memory_of_writing(tmp_path / "large.xml", 2000)
    # 1,800 more records are ~12 MB of XML; holding them would dwarf this margin.
    assert large < small * 1.5 + 512 * 1024


def test_the_project_parser_reads_the_generated_file(tmp_path):
    pubmed_xml = pytest.importorskip("ingest.pubmed_xml")
    path = tmp_path / "synth.xml"
    synth.write_pubmed_xml(path, 60, seed=9)
    records = list(pubmed_xml.iter_records(str(path)))
    expected = list(synth.iter_synthetic_articles(60, seed=9))
    assert [r.pmid for r in records] == [e["pmid"] for e in expected]
    for record, article in zip(records, expected):
        assert record.text == f"{article['title']}\n\n{article['abstract']}"
