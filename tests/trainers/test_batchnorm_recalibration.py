"""recalibrate_batchnorm ("precise BN") and TrainConfig.bn_recalibration_batches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from common.errors import UserError
from space import ArchSpec, build_model
from tests.trainers.random_data import random_data
from trainers import TrainConfig, train_trial
from trainers.augment import BatchTransform, channel_stats
from trainers.loop import evaluate_weights
from trainers.steps import recalibrate_batchnorm

TINY = ArchSpec(expansion=1, resolution=8, classes=3)
CPU = torch.device("cpu")


def _transform(images: torch.Tensor, resolution: int = 8) -> BatchTransform:
    return BatchTransform(resolution, channel_stats(images), CPU)


def _stale(norm: nn.BatchNorm2d) -> None:
    """Running statistics far from any data's."""
    norm.running_mean.fill_(5.0)
    norm.running_var.fill_(9.0)


def test_one_batch_gives_that_batchs_statistics_exactly() -> None:
    images = random_data(20, 0).images
    transform = _transform(images)
    norm = nn.BatchNorm2d(3)
    _stale(norm)
    model = nn.Sequential(norm)
    used = recalibrate_batchnorm(model, images, transform, batches=1, batch_size=20)
    inputs = transform.eval(images)
    assert used == 20
    torch.testing.assert_close(norm.running_mean, inputs.mean((0, 2, 3)))
    torch.testing.assert_close(norm.running_var, inputs.var((0, 2, 3), correction=1))
    assert norm.momentum == 0.1 and model.training and int(norm.num_batches_tracked) == 1


def test_several_batches_average_the_batch_statistics() -> None:
    images = random_data(20, 1).images
    transform = _transform(images)
    norm = nn.BatchNorm2d(3)
    _stale(norm)
    recalibrate_batchnorm(nn.Sequential(norm), images, transform, batches=4, batch_size=5)
    batches = transform.eval(images).split(5)  # no generator: in order, through eval
    means = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    variances = torch.stack([b.var((0, 2, 3), correction=1) for b in batches]).mean(0)
    torch.testing.assert_close(norm.running_mean, means)
    torch.testing.assert_close(norm.running_var, variances)
    # equal batches: the mean of the batch means is the mean of all the images
    torch.testing.assert_close(norm.running_mean, transform.eval(images).mean((0, 2, 3)))


def test_a_real_network_gets_the_batch_statistics_of_each_layer_and_keeps_its_weights() -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    images = random_data(24, 2).images
    transform = _transform(images)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        _stale(norm)
    weights = {k: v.clone() for k, v in model.named_parameters()}
    seen: dict[nn.Module, list[torch.Tensor]] = {norm: [] for norm in norms}
    hooks = [
        norm.register_forward_hook(lambda m, args, out: seen[m].append(args[0].detach()))
        for norm in norms
    ]
    generator = torch.Generator().manual_seed(3)
    used = recalibrate_batchnorm(model, images, transform, 6, 8, generator)  # 2 passes
    for hook in hooks:
        hook.remove()
    assert used == 48 and model.training
    for norm in norms:
        batches = seen[norm]
        assert len(batches) == 6
        means = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
        variances = torch.stack([b.var((0, 2, 3), correction=1) for b in batches]).mean(0)
        torch.testing.assert_close(norm.running_mean, means, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(norm.running_var, variances, rtol=1e-5, atol=1e-6)
        assert norm.momentum == 0.1
    for name, value in model.named_parameters():
        assert torch.equal(value, weights[name]), name


def test_nothing_to_do_without_batchnorm_or_batches() -> None:
    images = random_data(4, 0).images
    assert (
        recalibrate_batchnorm(nn.Sequential(nn.Identity()), images, _transform(images), 3, 2) == 0
    )
    norm = nn.BatchNorm2d(3)
    _stale(norm)
    assert recalibrate_batchnorm(nn.Sequential(norm), images, _transform(images), 0, 2) == 0
    assert float(norm.running_mean[0]) == 5.0


def test_the_loop_option_leaves_training_alone_and_evaluate_weights_repeats_it(
    tmp_path: Path,
) -> None:
    train, val = random_data(40, 0), random_data(12, 1)
    plain = TrainConfig(epochs=2, warmup_epochs=1, batch_size=8, threads=1)
    losses: dict[int, list[float]] = {0: [], 5: []}
    results = {}
    for batches in losses:
        config = replace(plain, bn_recalibration_batches=batches)
        results[batches] = train_trial(
            TINY,
            train,
            val,
            config,
            on_epoch=lambda r, b=batches: losses[b].append(r.train_loss) and False,
            save_dir=tmp_path / str(batches),
        )
    assert losses[0] == losses[5]  # same weights after every step: its draws are its own
    state = torch.load(tmp_path / "0" / "weights.pt", weights_only=True)
    accuracy, loss = evaluate_weights(TINY, state, train, val, plain)
    assert accuracy == results[0].accuracy and loss == pytest.approx(results[0].loss, rel=1e-5)
    recalibrated = replace(plain, bn_recalibration_batches=5)
    assert 0.0 <= evaluate_weights(TINY, state, train, val, recalibrated)[0] <= 1.0


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_the_option_must_be_a_count(value: object) -> None:
    with pytest.raises(UserError, match="bn_recalibration_batches"):
        TrainConfig(bn_recalibration_batches=value)  # type: ignore[arg-type]
