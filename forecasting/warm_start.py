"""Warm starts: where the weights a retraining fine-tunes from come from, and when they may not.

A scheduled retraining can start from the champion's weights instead of a fresh network and stop
after fewer epochs. The evidence must stay out of sample: a network that was fine-tuned from
weights which saw a fold's test windows would be judged on windows it learnt. So
:func:`forecasting.backtest.walk_forward` warm starts fold ``k`` from fold ``k-1``'s networks only
(trained on data before fold ``k-1``'s test block, so before fold ``k``'s too) and the first fold
from scratch; the champion's weights (trained on data up to its ``data_end``, at most the data the
final fit sees) warm start the final fit alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forecasting.artifacts import ModelArtifact
from forecasting.config import ModelConfig
from forecasting.network import NetworkSpec

if TYPE_CHECKING:
    from forecasting.model import WarmStart
    from forecasting.network import LSTMNetwork


def network_states(networks: Sequence[LSTMNetwork]) -> tuple[dict[str, Any], ...]:
    """Detached CPU copies of each network's weights (safe to load into a new module)."""
    return tuple(
        {name: tensor.detach().cpu().clone() for name, tensor in network.state_dict().items()}
        for network in networks
    )


def warm_start_from_artifact(
    artifact: ModelArtifact | None, model_config: ModelConfig, epochs: int | None
) -> WarmStart | None:
    """The champion's networks as a warm start for a fit of ``model_config``, or None (no
    champion, no ``epochs``, not a network artifact, or a network of another shape: that
    retraining starts fresh). The weights are read from safetensors only."""
    from forecasting.artifacts import InvalidArtifactError
    from forecasting.model import WarmStart
    from forecasting.predictor import LSTMPredictor

    if artifact is None or not epochs or artifact.metadata.get("model_kind") != "lstm":
        return None
    try:
        predictor = LSTMPredictor.from_artifact(artifact)
    except InvalidArtifactError:
        return None
    if predictor.spec != NetworkSpec.for_model(model_config):
        return None
    return WarmStart(states=network_states(predictor.networks), epochs=epochs)


def same_shape(states: Sequence[Mapping[str, Any]], spec: NetworkSpec) -> bool:
    """Whether every state dict fits a network of ``spec`` (names and shapes)."""
    from forecasting.network import LSTMNetwork

    reference = {k: tuple(v.shape) for k, v in LSTMNetwork(spec).state_dict().items()}
    return all({k: tuple(v.shape) for k, v in state.items()} == reference for state in states)
