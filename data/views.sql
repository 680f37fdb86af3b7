-- The summary views researchers start from. Applied by `cryokb build` (kb/evidence.py),
-- idempotently. Plain SQLite (window functions, no extensions), so they work in
-- sqlite3 and in Datasette alike.
--
-- Every summary counts relevant articles only, and leaves out retracted and deleted
-- ones. An article with several lesion types (or indications) counts once under each.
-- Medians are of the per-article values reported in the text.
--
-- The three summaries (evidence_by_lesion, evidence_by_indication, evidence_map) are
-- defined here as *_live views and stored as tables of the same name without the
-- suffix at the end of every build (kb/evidence.py): at 100,000 articles the views
-- take seconds, the tables milliseconds.

DROP VIEW IF EXISTS summary_articles;
CREATE VIEW summary_articles AS
SELECT pmid, title, pub_year, study_design, n_patients, n_lesions
FROM articles
WHERE relevant = 1 AND deleted = 0 AND retracted = 0;

DROP VIEW IF EXISTS article_lesions;
CREATE VIEW article_lesions AS
SELECT ac.concept AS lesion_type, s.*
FROM article_concepts ac JOIN summary_articles s ON s.pmid = ac.pmid
WHERE ac.field = 'lesion_types' AND ac.negated = 0;

DROP VIEW IF EXISTS article_indications;
CREATE VIEW article_indications AS
SELECT ac.concept AS indication, ac.inferred, s.*
FROM article_concepts ac JOIN summary_articles s ON s.pmid = ac.pmid
WHERE ac.field = 'indications' AND ac.negated = 0;

-- One row per (grouping, group, metric) value: the percentages of every outcome measure
-- (and grade), and pain scores before and after, per lesion type and per indication,
-- each with the outcome (outcome_id, in outcome_sentences with its sentence) it came
-- from. A percentage is the one stated, else the count over the total; a stated zero
-- ("no major complications": count 0, no total) is 0%.
DROP VIEW IF EXISTS lesion_outcome_values;
DROP VIEW IF EXISTS indication_outcome_values;
DROP VIEW IF EXISTS group_outcome_values;
CREATE VIEW group_outcome_values AS
WITH grouped AS (
  SELECT 'lesion_type' AS grouping, l.lesion_type AS grp, o.* FROM article_lesions l JOIN outcomes o ON o.pmid = l.pmid
  UNION ALL
  SELECT 'indication', i.indication, o.* FROM article_indications i JOIN outcomes o ON o.pmid = i.pmid
), valued AS (
  SELECT *, coalesce(percent, CASE WHEN count = 0 THEN 0.0
                                   WHEN total > 0 THEN round(100.0 * count / total, 1) END) AS share
  FROM grouped
)
SELECT grouping, grp, measure || coalesce(':' || grade, '') AS metric, share AS v, id AS outcome_id, pmid
  FROM valued WHERE share IS NOT NULL
UNION ALL SELECT grouping, grp, 'pain_before', before, id, pmid FROM grouped
  WHERE measure = 'pain_score' AND before IS NOT NULL
UNION ALL SELECT grouping, grp, 'pain_after', after, id, pmid FROM grouped
  WHERE measure = 'pain_score' AND after IS NOT NULL;

-- Median, range and count of each metric in each group.
DROP VIEW IF EXISTS group_outcome_stats;
CREATE VIEW group_outcome_stats AS
WITH ranked AS (
  SELECT grouping, grp, metric, v,
         row_number() OVER (PARTITION BY grouping, grp, metric ORDER BY v) AS rn,
         count(*) OVER (PARTITION BY grouping, grp, metric) AS n
  FROM group_outcome_values
)
SELECT grouping, grp, metric, round(avg(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN v END), 1) AS median,
       round(min(v), 1) || '-' || round(max(v), 1) AS value_range, max(n) AS n
FROM ranked GROUP BY grouping, grp, metric;

DROP VIEW IF EXISTS evidence_by_lesion_live;
CREATE VIEW evidence_by_lesion_live AS
WITH
  stats AS (SELECT * FROM group_outcome_stats WHERE grouping = 'lesion_type'),
  designs AS (
    SELECT lesion_type, group_concat(study_design || ' ' || k, ', ') AS designs FROM (
      SELECT lesion_type, coalesce(study_design, 'unknown') AS study_design, count(*) AS k
      FROM article_lesions GROUP BY lesion_type, study_design ORDER BY k DESC)
    GROUP BY lesion_type
  ),
  inds AS (
    SELECT l.lesion_type, group_concat(DISTINCT i.indication) AS indications
    FROM article_lesions l JOIN article_indications i ON i.pmid = l.pmid GROUP BY l.lesion_type
  ),
  base AS (
    SELECT lesion_type, count(*) AS studies, sum(n_patients) AS patients, sum(n_lesions) AS lesions
    FROM article_lesions GROUP BY lesion_type
  )
SELECT
  b.lesion_type,
  c.label,
  b.studies,
  b.patients,
  b.lesions,
  d.designs,
  i.indications,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'clinical_success') AS clinical_success_median,
  (SELECT value_range FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'clinical_success') AS clinical_success_range,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'local_control') AS local_control_median,
  (SELECT value_range FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'local_control') AS local_control_range,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'complications:major') AS major_complications_median,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'complications:minor') AS minor_complications_median,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'complications:any') AS any_complications_median,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'pain_before') AS pain_before_median,
  (SELECT median FROM stats s WHERE s.grp = b.lesion_type AND s.metric = 'pain_after') AS pain_after_median
FROM base b
LEFT JOIN concepts c ON c.key = b.lesion_type
LEFT JOIN designs d ON d.lesion_type = b.lesion_type
LEFT JOIN inds i ON i.lesion_type = b.lesion_type
ORDER BY b.studies DESC, b.lesion_type;

DROP VIEW IF EXISTS evidence_by_indication_live;
CREATE VIEW evidence_by_indication_live AS
WITH
  stats AS (SELECT * FROM group_outcome_stats WHERE grouping = 'indication'),
  lesions AS (
    SELECT i.indication, group_concat(DISTINCT l.lesion_type) AS lesion_types
    FROM article_indications i JOIN article_lesions l ON l.pmid = i.pmid GROUP BY i.indication
  ),
  base AS (
    SELECT indication, count(*) AS studies, sum(n_patients) AS patients, sum(inferred) AS inferred_in
    FROM article_indications GROUP BY indication
  )
SELECT
  b.indication,
  c.label,
  b.studies,
  b.patients,
  b.inferred_in,
  l.lesion_types,
  (SELECT median FROM stats s WHERE s.grp = b.indication AND s.metric = 'clinical_success') AS clinical_success_median,
  (SELECT median FROM stats s WHERE s.grp = b.indication AND s.metric = 'local_control') AS local_control_median,
  (SELECT median FROM stats s WHERE s.grp = b.indication AND s.metric = 'pain_response') AS pain_response_median,
  (SELECT median FROM stats s WHERE s.grp = b.indication AND s.metric = 'complications:major') AS major_complications_median
FROM base b
LEFT JOIN concepts c ON c.key = b.indication
LEFT JOIN lesions l ON l.indication = b.indication
ORDER BY b.studies DESC, b.indication;

DROP VIEW IF EXISTS evidence_map_live;
CREATE VIEW evidence_map_live AS
SELECT l.lesion_type, i.indication, count(DISTINCT l.pmid) AS studies, sum(l.n_patients) AS patients
FROM article_lesions l JOIN article_indications i ON i.pmid = l.pmid
GROUP BY l.lesion_type, i.indication
ORDER BY l.lesion_type, i.indication;

DROP VIEW IF EXISTS outcome_sentences;
CREATE VIEW outcome_sentences AS
SELECT o.id AS outcome_id, o.pmid, a.pub_year, a.title, a.lesion_types, o.measure, o.grade, o.scale,
       o.percent, o.count, o.total, o.before, o.after, o.timepoint, o.direction,
       o.evidence_text, s.text AS sentence, a.retracted, a.relevant
FROM outcomes o
JOIN articles a ON a.pmid = o.pmid
LEFT JOIN sentences s ON s.id = o.sentence_id
WHERE a.deleted = 0;

DROP VIEW IF EXISTS articles_needing_review;
CREATE VIEW articles_needing_review AS
SELECT a.pmid, a.title, a.pub_year, 'relevant, but no outcome extracted' AS reason
FROM articles a
WHERE a.relevant = 1 AND a.deleted = 0 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.pmid = a.pmid)
UNION ALL
SELECT a.pmid, a.title, a.pub_year, 'relevant, but no lesion type' FROM articles a
WHERE a.relevant = 1 AND a.deleted = 0 AND coalesce(a.lesion_types, '[]') = '[]'
UNION ALL
SELECT a.pmid, a.title, a.pub_year, 'fewer lesions (' || a.n_lesions || ') than patients (' || a.n_patients || ')'
FROM articles a WHERE a.relevant = 1 AND a.deleted = 0 AND a.n_lesions < a.n_patients
UNION ALL
SELECT a.pmid, a.title, a.pub_year,
       o.measure || ': ' || o.percent || '% disagrees with ' || o.count || '/' || o.total
FROM outcomes o JOIN articles a ON a.pmid = o.pmid
WHERE a.deleted = 0 AND o.percent IS NOT NULL AND o.total > 0
  AND abs(o.percent - 100.0 * o.count / o.total) > 1
UNION ALL
SELECT a.pmid, a.title, a.pub_year, 'retracted, but has evidence' FROM articles a
WHERE a.retracted = 1 AND a.relevant = 1 AND a.deleted = 0;
