"""`bond simulate`: synthetic traffic whose truth is known, run through Bond and scored.

Households (`--households`, the default):
- `households`: the generator (who lives there, when and on what they browse, what they buy);
- `traffic`: the generated sessions as Segment messages;
- `offline`: the household engine fed in-process (for calibration and quick evaluation);
- `canary`: the same traffic through the real collector and worker over HTTP;
- `evaluate`: attribution quality against the ground truth.

The identity canary (`--visitors`):
- `visitors`: people on several browsers and the hard cases of identity, with who did what;
- `visitors_canary`: their events through the real collector and worker;
- `visitors_score`: each event's person in Bond's identity map against who really did it.
"""
