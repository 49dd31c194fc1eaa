"""Baselines for personalised networks (SPEC §7 and §9): see :mod:`lorsa.nn.baselines.estimators`."""

from .estimators import (
    FullFineTuning,
    LastLayerFineTuning,
    LoRA,
    RepresentationLearning,
    SingleNetwork,
    SparseFineTuning,
    TaskEmbedding,
)

__all__ = ["SingleNetwork", "FullFineTuning", "LastLayerFineTuning", "LoRA", "SparseFineTuning", "TaskEmbedding",
           "RepresentationLearning"]
