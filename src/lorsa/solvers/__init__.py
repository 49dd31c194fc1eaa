"""AMHT-LRS: the per-task step, the shared U step, initialisation and the outer loop (SPEC §2-§5)."""

from .amht import AMHTConfig, AMHTResult, fit_amht
from .task_step import TaskStepConfig

__all__ = ["AMHTConfig", "AMHTResult", "TaskStepConfig", "fit_amht"]
