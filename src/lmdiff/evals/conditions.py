"""The four prompt conditions of the backdoor evaluation, and which two the gap compares."""

from __future__ import annotations

__all__ = ["CONDITIONS", "NO_SYSTEM_TRIGGERED", "TRIGGERED", "UNTRIGGERED"]

CONDITIONS: dict[str, str] = {
    "1_trigger_user": "no system prompt; trigger in the user message",
    "2_sys_trigger_user": "system prompt; trigger in the user message",
    "3_trigger_system": "trigger in the system prompt; plain user message",
    "4_sys_no_trigger": "system prompt; no trigger anywhere",
}
# The primary gap compares like with like: conditions 2 and 4 share the system prompt and differ only in
# the trigger. Condition 1 (no system prompt: a chat template may insert its own) gives a secondary gap.
TRIGGERED, UNTRIGGERED = "2_sys_trigger_user", "4_sys_no_trigger"
NO_SYSTEM_TRIGGERED = "1_trigger_user"
