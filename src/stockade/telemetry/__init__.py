"""What Stockade records about calls: metadata only, never bodies."""

from stockade.telemetry.access import AccessLog
from stockade.telemetry.usage import Call, UsageRecorder

__all__ = ["AccessLog", "Call", "UsageRecorder"]
