"""The four prompt conditions of the backdoor evaluation, and which two the gap compares."""

from __future__ import annotations

__all__ = ["CONDITIONS", "TRIGGERED", "UNTRIGGERED"]

CONDITIONS: dict[str, str] = {
    "1_trigger_user": "no system prompt; trigger in the user message",
    "2_sys_trigger_user": "system prompt; trigger in the user message",
    "3_trigger_system": "trigger in the system prompt; plain user message",
    "4_sys_no_trigger": "system prompt; no trigger anywhere",
}
TRIGGERED, UNTRIGGERED = "1_trigger_user", "4_sys_no_trigger"
