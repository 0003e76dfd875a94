-- Gives every imported lead one settled attempt, and every third one a call record, so that
-- the report export reads what a finished campaign holds.
PRAGMA journal_mode = WAL;
BEGIN;
INSERT INTO attempt (id, campaign_id, lead_id, number, phone, channel, queued_at, originated_at, answered_at, ended_at,
    dial_status, hangup_cause, dial_result, outcome, settled_at)
SELECT printf('%08x-0000-4000-8000-%012x', id, id), campaign_id, id, 1, phone, 'PJSIP/' || phone || '@trunk',
    '2026-07-13 18:00:00.000', '2026-07-13 18:00:00.100', CASE WHEN id % 3 = 0 THEN '2026-07-13 18:00:05.000' END, '2026-07-13 18:01:00.000',
    CASE WHEN id % 3 = 0 THEN 'ANSWER' ELSE 'NOANSWER' END, 16, CASE WHEN id % 3 = 0 THEN 'answered' ELSE 'no answer' END,
    CASE WHEN id % 3 = 0 THEN 'not_interested' ELSE 'no_answer' END, '2026-07-13 18:01:00.000'
FROM lead;
UPDATE lead SET attempts = 1, status = CASE WHEN id % 3 = 0 THEN 'done' ELSE 'pending' END,
    outcome = CASE WHEN id % 3 = 0 THEN 'not_interested' ELSE 'no_answer' END,
    next_attempt_at = CASE WHEN id % 3 = 0 THEN NULL ELSE '2026-07-13 20:01:00.000' END;
INSERT INTO call_record (attempt_id, record, outcome, sentiment_label, sentiment_score, objective, motive, objections, summary,
    talk_seconds, first_audio_at, finished, updated_at)
SELECT id, '{}', 'not_interested', 'negative', -0.4, 'book an assessment', 'saving money', '["price","renting"]',
    'Said the price was too high and that they rent.', 31.5, '2026-07-13 18:00:05.400', 1, '2026-07-13 18:01:00.000'
FROM attempt WHERE answered_at IS NOT NULL;
COMMIT;
