"""p2pmsg.monitor: security events -> windows -> rules + models -> alerts.

- `events`: strict parsing of event records (the records themselves, `SecurityEvent`
  and `Alert`, are p2pmsg.security_events: every layer shares them).
- `features`: the incremental per-key 60 s windower shared by live and training.
- `rules`: fail2ban/CrowdSec-style thresholds and leaky buckets.
- `model`: verified loading (pinned SHA-256) and scoring; scikit-learn only here.
- `detect`, `alerts`: merging verdicts; de-duplication and escalation.
- `live`: `Monitor`, the engine the node drives.
- `simulate`, `attacks`, `train`, `evaluate`: datasets, training, grading.
- `datasets`, `paths`: where the shipped datasets and models are, checkout or installed copy.

Importing this package never imports scikit-learn.
"""

from __future__ import annotations

from p2pmsg.monitor.events import event_from_dict, parse_event
from p2pmsg.monitor.live import Monitor

__all__ = ["Monitor", "event_from_dict", "parse_event"]
