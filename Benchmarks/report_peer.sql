-- The peer for the report export: the same join, written by the sqlite3 shell as CSV
-- (no name derivation, no formula guard, no JSON decoding of objections).
SELECT lead.phone, lead.record, lead.attempts, lead.outcome, attempt.dial_result, call_record.talk_seconds, call_record.sentiment_label,
    call_record.sentiment_score, call_record.objective, call_record.motive, call_record.objections, lead.callback_at, lead.next_attempt_at,
    call_record.summary
FROM lead
LEFT JOIN attempt ON attempt.lead_id = lead.id AND attempt.number = lead.attempts
LEFT JOIN call_record ON call_record.attempt_id = attempt.id
ORDER BY lead.id;
