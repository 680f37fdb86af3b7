// cryokb: on the articles table, the PMID cell links to the article's page here (Datasette's
// primary-key link); add the PubMed link beside it, as render_cell does on every other page.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("td.col-pmid.type-pk").forEach(function (cell) {
    var pmid = cell.textContent.trim();
    if (!/^[0-9]+$/.test(pmid) || cell.querySelector("a.cryokb-pubmed")) return;
    var link = document.createElement("a");
    link.className = "cryokb-pubmed";
    link.href = "https://pubmed.ncbi.nlm.nih.gov/" + pmid + "/";
    link.title = "Open in PubMed";
    link.textContent = "PubMed \u2197";
    cell.appendChild(document.createTextNode(" "));
    cell.appendChild(link);
  });
});
