"""lorsa.nn baselines (SPEC §7 carried to networks), the network experiment and its command."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from lorsa.nn import make_mlp  # noqa: E402
from lorsa.nn.baselines import (  # noqa: E402
    FullFineTuning,
    LastLayerFineTuning,
    LoRA,
    RepresentationLearning,
    SingleNetwork,
    SparseFineTuning,
    TaskEmbedding,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    t, m, d = 8, 10, 3
    X = rng.normal(size=(t * m, d))
    tasks = np.repeat(np.arange(t), m)
    y = np.tanh(X[:, 0] * rng.normal(size=t)[tasks]) + 0.3 * rng.normal(size=t)[tasks]
    return X, y, tasks


SMALL = dict(n_epochs=2, pretrain_epochs=2, task_batch_size=4, task_steps=2, random_state=0)
P = 3 * 6 + 6 + 6 * 5 + 5 + 5 + 1                 # make_mlp(3, (6, 5)): 65 parameters


@pytest.mark.parametrize(("make", "per_task", "indices"), [
    (lambda m: SingleNetwork(m, **SMALL), 0, 0),
    (lambda m: FullFineTuning(m, **SMALL), P, 0),
    (lambda m: LastLayerFineTuning(m, **SMALL), 5 + 1, 0),
    (lambda m: LoRA(m, rank=2, **SMALL), 2 * ((3 + 6) + (6 + 5) + (5 + 1)), 0),
    (lambda m: SparseFineTuning(m, sparsity=3, **SMALL), 3, 3),
    (lambda m: TaskEmbedding(m, embedding_dim=2, **SMALL), 2, 0),
    (lambda m: RepresentationLearning(m, rank=2, **SMALL), 2, 0),
])
def test_each_baseline_fits_predicts_and_counts_its_storage(data, make, per_task, indices, tmp_path):
    X, y, tasks = data
    est = make(make_mlp(3, (6, 5), seed=0)).fit(X, y, tasks)
    assert est.n_parameters_ == P
    assert (est.params_per_task_, est.indices_per_task_) == (per_task, indices)
    pred = est.predict(X, tasks)
    assert pred.shape == y.shape and np.isfinite(pred).all()
    est.save(tmp_path / "m.safetensors")
    back = type(est).load(tmp_path / "m.safetensors", make_mlp(3, (6, 5)))
    np.testing.assert_array_equal(back.predict(X, tasks), pred)


def test_last_layer_fine_tuning_changes_only_the_last_layer(data):
    X, y, tasks = data
    est = LastLayerFineTuning(make_mlp(3, (6, 5), seed=0), **SMALL).fit(X, y, tasks)
    delta = est.task_parameters(est.tasks_) - est.theta0_
    last = est.space_.slice_of("4.weight").start
    assert torch.count_nonzero(delta[:, :last]) == 0 and torch.count_nonzero(delta[:, last:]) > 0


def test_lora_update_of_every_matrix_has_rank_at_most_rho(data):
    X, y, tasks = data
    est = LoRA(make_mlp(3, (6, 5), seed=0), rank=1, **SMALL).fit(X, y, tasks)
    delta = est.task_parameters(est.tasks_) - est.theta0_
    for name in est.space_.matrix_names():
        sl = est.space_.slice_of(name)
        shape = est.space_.shapes[est.space_.names.index(name)]
        ranks = torch.linalg.matrix_rank(delta[:, sl].reshape(-1, *shape).double(), atol=1e-6)
        assert int(ranks.max()) <= 1
    bias = est.space_.slice_of("0.bias")
    assert torch.count_nonzero(delta[:, bias]) == 0                 # LoRA adapts weight matrices only


def test_task_embedding_equals_an_embedding_concatenated_to_the_input(data):
    """f([x, e_i]) through Linear(d + q, h) with weight [W_1, E] is what the first-bias subspace computes."""
    X, y, tasks = data
    est = TaskEmbedding(make_mlp(3, (6, 5), seed=0), embedding_dim=2, **SMALL).fit(X, y, tasks)
    net = make_mlp(5, (6, 5), seed=0)
    theta0 = est.space_.unflatten(est.theta0_)
    with torch.no_grad():
        net[0].weight.copy_(torch.cat([theta0["0.weight"], est.adapter_.shared["U"]], dim=1))
        for name in ("0.bias", "2.weight", "2.bias", "4.weight", "4.bias"):
            net.get_parameter(name).copy_(theta0[name])
        e = est.task_state_.dense["w"][tasks]                      # the tasks' embeddings
        concat = net(torch.cat([torch.from_numpy(X).float(), e], dim=1))[:, 0].double().numpy()
    np.testing.assert_allclose(est.predict(X, tasks), concat, rtol=1e-5, atol=1e-6)


def test_network_experiment_writes_its_files(tmp_path):
    from lorsa.experiments.networks import NetworkConfig, run_networks

    config = NetworkConfig(n_tasks=12, n_samples=8, n_test=5, n_features=3, hidden=(4, 4), rank=1, sparsity=1,
                           noise_levels=(0.0,), seeds=(0,), n_epochs=1, pretrain_epochs=1, task_steps=1,
                           task_batch_size=6, adapt_epochs=1, methods=("lrs", "single", "lora"), adapt_samples=(4,),
                           n_new_tasks=3, adapt_methods=("lrs",))
    result = run_networks(config, tmp_path, progress=False, plot=True)
    assert {p.name for p in result.files.values()} == {"runs.csv", "summary.json", "adaptation.csv", "table.md",
                                                      "networks.png"}
    assert [r["method"] for r in result.runs] == ["lrs", "single", "lora"]
    assert result.runs[0]["params_per_task"] == 2 and result.adaptation[0]["m"] == 4
    assert "LoRA (rank 1)" in (tmp_path / "table.md").read_text()


def test_reproduce_nn_command_is_registered_and_checks_options(capsys):
    from lorsa.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "nn", "--help"])
    assert exc.value.code == 0
    assert "--quick" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "nn", "--tasks", "0"])
    assert exc.value.code == 2
