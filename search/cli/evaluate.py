"""`search evaluate`: the test-split accuracy of saved weights, with the input they were trained on.

A thin shell over ``trainers.evaluation``: read ``DIR/spec.json`` (the spec and its input
contract) and ``DIR/weights.pt``, load the data set's test split and count the images the network
classifies right, fed exactly as the trainer fed it (the recorded resize, centre crop and
normalisation statistics). The same function gives ``search train --test`` its figure, so an
evaluation of the saved weights repeats the number printed at training time, to the image.

The default device is the CPU: its count is deterministic and the same on every run, the reference
figure; ``--device cuda`` is faster, but its kernels round differently, so an image near a tie
may fall the other way.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from common.bounds import MAX_THREADS, check_int
from trainers import DATASETS, check_dataset, load_dataset, resolve_device
from trainers.device import cpu_threads
from trainers.evaluation import WEIGHTS_FILE, evaluate_on, load_saved

# what `--dataset` falls back to when the input contract names no data set that can be loaded
DEFAULT_DATASET = "fashion-mnist"


@click.command("evaluate")
@click.option(
    "--weights",
    "weights_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory with spec.json and weights.pt (`search train --save`, `search final`, "
    "`search export`).",
)
@click.option(
    "--dataset",
    type=str,
    default=None,
    help=f"Data set whose test split to evaluate: {' | '.join(DATASETS)} "
    "[default: the one the weights were trained on].",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data set directory (default for fashion-mnist: the Debian package's).",
)
@click.option(
    "--device", type=str, default="cpu", show_default=True, help="cpu | cuda | cuda:N | auto."
)
@click.option("--threads", type=int, default=None, help="CPU threads (default: torch's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_command(
    weights_dir: Path,
    dataset: str | None,
    data_dir: Path | None,
    device: str,
    threads: int | None,
    as_json: bool,
) -> None:
    """Evaluate saved weights once on a data set's whole test split and print the accuracy."""
    if dataset is not None:
        check_dataset(dataset, "--dataset")
    if threads is not None:
        check_int("threads", threads, 1, MAX_THREADS, "--threads")
    torch_device = resolve_device(device)
    saved = load_saved(weights_dir, "--weights")
    if dataset is None:
        recorded = saved.contract.dataset
        dataset = recorded if recorded in DATASETS else DEFAULT_DATASET
    _, test = load_dataset(dataset, data_dir)
    with cpu_threads(threads):
        evaluation = evaluate_on(saved.model, test, saved.contract, torch_device)
    record = {
        "weights": str(saved.directory / WEIGHTS_FILE),
        "spec": saved.spec.canonical(),
        "spec_id": saved.spec.spec_id,
        "dataset": dataset,
        "split": "test",
        "device": str(torch_device),
        **evaluation.to_dict(),
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    for key, value in record.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        click.echo(f"{key:<16}{shown}")
