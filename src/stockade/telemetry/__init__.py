"""What Stockade records about calls: metadata only, never bodies."""

from stockade.telemetry.diagnostics import DiagnosticLog
from stockade.telemetry.usage import Call, UsageRecorder

__all__ = ["Call", "DiagnosticLog", "UsageRecorder"]
