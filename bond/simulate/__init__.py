"""`bond simulate`: synthetic households with known members, run through Bond and scored.

- `households`: the generator (who lives there, when and on what they browse, what they buy);
- `traffic`: the generated sessions as Segment messages;
- `offline`: the household engine fed in-process (for calibration and quick evaluation);
- `canary`: the same traffic through the real collector and worker over HTTP;
- `evaluate`: attribution quality against the ground truth.
"""
