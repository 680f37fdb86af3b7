"""The synthetic demo records read cleanly, odd cases included, in both formats."""

from pathlib import Path

from Bio import Medline

from ingest.model import Article
from ingest.readers import read_records

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def test_the_xml_samples_read_without_problems_and_keep_their_odd_cases():
    records = list(read_records(SAMPLES / "demo_pubmed.xml"))
    assert all(isinstance(r, Article) for r in records) and len(records) == 36
    by_pmid = {a.pmid: a for a in records}
    assert by_pmid["99000018"].retracted
    assert [l.ref_type for l in by_pmid["99000020"].links] == ["ErratumIn"]
    assert by_pmid["99000021"].abstract == ""
    assert any(a.collective_name for a in by_pmid["99000022"].authors)
    assert by_pmid["99000015"].pub_year == 2018 and by_pmid["99000016"].pub_date.startswith("2019")


def test_the_medline_samples_agree_with_what_biopython_reads():
    articles = list(read_records(SAMPLES / "demo_medline.nbib"))
    with open(SAMPLES / "demo_medline.nbib", encoding="utf-8") as handle:
        raw = list(Medline.parse(handle))
    assert len(articles) == len(raw) == 8
    for article, record in zip(articles, raw):
        assert article.pmid == record["PMID"]
        assert article.title == record["TI"]
        assert article.source_format == "medline"
        assert [a.last_name for a in article.authors if a.last_name] == [n.split(",")[0] for n in record["FAU"]]
