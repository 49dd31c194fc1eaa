"""Personalised networks as estimators: fit / predict / score / adapt / save / load (SPEC §9).

:class:`TaskNetworkEstimator` holds everything the method and its baselines share -- input checks, the task
labels, the alternating training of :mod:`lorsa.nn.training`, batched prediction, adaptation of new tasks with the
shared part frozen and the safetensors model file -- and a subclass says only which adapter it trains
(``_make_adapter``) and whether the shared part is trained after pre-training. :class:`NetworkLRS` is the paper's
model ``theta_i = theta_0 + U w_i + b_i``.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .. import _validation as v
from ..io import ModelFileError
from ..params import plain_value
from ..task_labels import TaskIndex
from ._torch import require_torch, torch_threads
from .adapter import Adapter, LRSAdapter
from .early_stopping import EarlyStopping, held_out_rows
from .functional import ParameterSpace, batched_forward
from .io import read_network_file, write_network_file
from .objective import LOSSES, prepare_outputs
from .task_data import TaskRows
from .training import TaskState, TrainConfig, initial_basis, task_batches, task_step, train

__all__ = ["TaskNetworkEstimator", "NetworkLRS"]

_DTYPES = ("float32", "float64")


class TaskNetworkEstimator(BaseEstimator):
    """Shared machinery of the personalised-network estimators (not used directly).

    Parameters common to every subclass
    -----------------------------------
    module : torch.nn.Module
        The network (architecture and starting weights ``theta_0``; a pre-trained network or a fresh one). It is
        copied, never modified. It maps a batch ``(m, d)`` to ``(m, 1)`` or ``(m,)`` outputs (``loss="mse"``) or
        ``(m, c)`` logits (``loss="cross_entropy"``). It runs in eval mode (dropout off, batch-norm statistics
        fixed).
    parameters : list of str or None
        The personalised parameters: names or name prefixes (``["0", "4.weight"]``); None: every parameter with
        ``requires_grad``. The others keep the module's values.
    loss : {"mse", "cross_entropy"}
        Regression (``1/2 (f - y)^2``; ``predict`` returns values, ``score`` is R^2) or classification
        (``predict`` returns labels, ``predict_proba`` probabilities, ``score`` is accuracy).
    n_epochs, pretrain_epochs : int
        Epochs of the alternating training, and of pre-training ``theta_0`` alone on all tasks pooled (the
        single network) before it.
    task_batch_size : int
        Tasks per mini-batch.
    task_steps : int
        ``T``: per-task steps per visit of a mini-batch.
    task_lr, shared_lr : float
        Adam step sizes of the dense per-task tensors and of the shared tensors.
    shared_steps : int
        Adam steps on the shared tensors per mini-batch (after its per-task step).
    ridge : float
        Penalty ``ridge/2 ||.||^2`` on each task's own parameters (0: none).
    adapt_epochs : int
        Visits of every new task in :meth:`adapt`.
    dtype : {"float32", "float64"}
    n_threads : int or None
        Torch CPU threads while fitting and predicting (restored afterwards); None: torch's setting. The default
        1 suits the many small batched products of small networks (:func:`lorsa.nn._torch.torch_threads`).
    random_state : int or None
        Seeds every random choice (task order, initial factors): the same seed gives the same model.
    verbose : bool
        Print the training loss after every epoch.

    Attributes
    ----------
    tasks_ : ndarray of shape (t,)
        Sorted task labels.
    theta0_ : torch.Tensor of shape (P,)
        The shared ``theta_0``.
    adapter_ : lorsa.nn.adapter.Adapter
        The shared tensors (``adapter_.shared``).
    task_state_ : lorsa.nn.training.TaskState
        Every task's own parameters (row ``i`` for task ``tasks_[i]``).
    space_ : lorsa.nn.functional.ParameterSpace
    n_parameters_ : int
        ``P``.
    params_per_task_, indices_per_task_ : int
        Numbers and integer indices a task stores beyond the shared part.
    bytes_per_task_ : int
        Their size (values in ``dtype``, indices as int32).
    loss_history_ : list of float
        Mean training loss per row of each epoch.
    classes_ : ndarray
        Class labels (``loss="cross_entropy"``).
    n_features_in_ : int
    """

    #: Whether the shared tensors (``theta_0``, the adapter's) are trained after pre-training.
    _trains_shared: bool = True

    def _common_init(self, module: Any, parameters: Any, loss: str, n_epochs: int, pretrain_epochs: int,
                     task_batch_size: int, task_steps: int, task_lr: float, shared_lr: float, shared_steps: int,
                     ridge: float,
                     adapt_epochs: int, dtype: str, n_threads: int | None, random_state: int | None,
                     verbose: bool) -> None:
        self.module = module
        self.parameters = parameters
        self.loss = loss
        self.n_epochs = n_epochs
        self.pretrain_epochs = pretrain_epochs
        self.task_batch_size = task_batch_size
        self.task_steps = task_steps
        self.task_lr = task_lr
        self.shared_lr = shared_lr
        self.shared_steps = shared_steps
        self.ridge = ridge
        self.adapt_epochs = adapt_epochs
        self.dtype = dtype
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ what a subclass provides
    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        raise NotImplementedError

    def _init_basis(self, net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState,
                    data: TaskRows, config: TrainConfig, generator: Any) -> None:
        """Runs after pre-training (default: nothing)."""

    # ------------------------------------------------------------------ checks
    def _config(self) -> TrainConfig:
        v.check_choice("loss", self.loss, LOSSES)
        v.check_choice("dtype", self.dtype, _DTYPES)
        v.check_int("random_state", self.random_state, 0, allow_none=True)
        return TrainConfig(
            loss=self.loss, n_epochs=v.check_int("n_epochs", self.n_epochs, 0),
            pretrain_epochs=v.check_int("pretrain_epochs", self.pretrain_epochs, 0),
            task_batch_size=v.check_int("task_batch_size", self.task_batch_size, 1),
            task_steps=v.check_int("task_steps", self.task_steps, 1),
            task_lr=v.check_float("task_lr", self.task_lr, 0.0, low_inclusive=False),
            shared_lr=v.check_float("shared_lr", self.shared_lr, 0.0, low_inclusive=False),
            shared_steps=v.check_int("shared_steps", self.shared_steps, 1),
            ridge=v.check_float("ridge", self.ridge, 0.0), train_base=self._trains_shared,
            solver=v.check_choice("solver", getattr(self, "solver", "gradient"), ("pursuit", "gradient")),
            train_shared=self._trains_shared)

    def _torch_dtype(self) -> Any:
        return getattr(require_torch(), self.dtype)

    def _network(self) -> tuple[Any, ParameterSpace]:
        torch = require_torch()
        if not isinstance(self.module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(self.module).__name__}")
        net = copy.deepcopy(self.module).to(self._torch_dtype()).eval()
        return net, ParameterSpace.from_module(net, self.parameters)

    def _probe(self, net: Any, space: ParameterSpace, theta0: Any, X: Any) -> None:
        """One forward on two rows: a feature count the module cannot take is an error naming X."""
        try:
            out = batched_forward(net, space, theta0[None], X[None, :2])
        except RuntimeError as exc:
            raise ValueError(f"X has {X.shape[1]} features, which module {type(net).__name__} cannot take: "
                             f"{str(exc).splitlines()[0]}") from exc
        prepare_outputs(out, self.loss)

    def _check_fitted(self) -> None:
        if not hasattr(self, "theta0_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y, tasks=...) first")

    def _targets(self, y: Any, n: int, fitting: bool) -> np.ndarray:
        if self.loss == "mse":
            return v.check_targets(y, n).astype(np.float64)
        arr = np.asarray(y)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"y must be a 1-D array of {n} class labels, got shape {arr.shape}")
        if fitting:
            self.classes_, codes = np.unique(arr, return_inverse=True)
            if self.classes_.size < 2:
                raise ValueError(f"y has {self.classes_.size} class; loss='cross_entropy' needs at least 2")
            return codes.astype(np.int64)
        pos = np.searchsorted(self.classes_, arr)
        pos = np.minimum(pos, self.classes_.size - 1)
        bad = self.classes_[pos] != arr
        if bad.any():
            raise ValueError(f"y holds classes never seen in fit: {np.unique(arr[bad])[:5].tolist()}; the model "
                             f"knows {self.classes_.tolist()[:10]}")
        return pos.astype(np.int64)

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, tasks: Any, eval_set: tuple[Any, Any, Any] | None = None,
            patience: int | None = None) -> TaskNetworkEstimator:
        """Train on the rows of every task.

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
            Targets (regression) or class labels (classification).
        tasks : array-like of shape (N,)
            Task label (int or str) of each row.
        eval_set : (X, y, tasks), optional
            Held-out rows of fitted tasks for early stopping: the mean loss per row on them is recorded after
            pre-training and after every alternating epoch (``eval_history_``), and the state of the best one is
            kept (``best_epoch_``, 0 = after pre-training). Hold out *training* rows here, never test rows.
        patience : int, optional
            Stop after this many epochs without improvement on ``eval_set`` (needs ``eval_set``; None: run every
            epoch and keep the best).
        """
        v.check_int("n_threads", self.n_threads, 1, allow_none=True)
        v.check_int("patience", patience, 1, allow_none=True)
        if patience is not None and eval_set is None:
            raise ValueError("patience needs eval_set=(X, y, tasks): the held-out rows early stopping scores")
        with torch_threads(self.n_threads):
            return self._fit(X, y, tasks, eval_set, patience)

    def _fit(self, X: Any, y: Any, tasks: Any, eval_set: Any = None, patience: int | None = None
             ) -> TaskNetworkEstimator:
        torch = require_torch()
        config = self._config()
        X = v.check_features(X)
        n = X.shape[0]
        y = self._targets(y, n, fitting=True)
        labels = v.check_task_labels(tasks, n)
        unique, index = np.unique(labels, return_inverse=True)
        net, space = self._network()
        dtype = self._torch_dtype()
        data = TaskRows.build(X, y, index, unique.shape[0], dtype)
        theta0 = space.flatten(net)
        self._probe(net, space, theta0, data.X)
        rng = np.random.default_rng(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        adapter = self._make_adapter(space, net, dtype)
        state = TaskState.empty(adapter, unique.shape[0], generator, dtype)

        stopper = None
        if eval_set is not None:
            rows, present = held_out_rows(eval_set, unique, X.shape[1], dtype, self._targets)
            stopper = EarlyStopping(net, space, adapter, theta0, state, rows, present, self.loss,
                                    patience if patience is not None else config.n_epochs + 1, config.task_batch_size)

        def init_basis() -> None:
            self._init_basis(net, space, adapter, theta0, state, data, config, generator)
            if stopper is not None:
                stopper.record()

        def monitor(epoch: int, loss: float) -> bool:
            stop = stopper is not None and stopper.record()
            if self.verbose:
                extra = f"  held-out loss {stopper.history[-1]:.6e}" if stopper is not None else ""
                print(f"epoch {epoch + 1:4d}  training loss {loss:.6e}{extra}", flush=True)
            return stop

        history = train(net, space, adapter, theta0, state, data, config, rng, init_basis=init_basis,
                        on_epoch=monitor)
        if stopper is not None:
            stopper.restore()
        self._set_fitted(net, space, adapter, theta0.detach(), state, unique, X.shape[1])
        self.loss_history_ = history
        self.eval_history_ = list(stopper.history) if stopper is not None else []
        self.best_epoch_ = stopper.best_epoch if stopper is not None else len(history)
        return self

    def _set_fitted(self, net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState,
                    tasks: np.ndarray, d: int) -> None:
        self.net_, self.space_, self.adapter_, self.theta0_, self.task_state_ = net, space, adapter, theta0, state
        self.tasks_ = tasks
        self._index = TaskIndex(tasks)
        self.n_features_in_ = int(d)
        self.n_parameters_ = space.size
        self.params_per_task_ = adapter.numbers_per_task()
        self.indices_per_task_ = adapter.indices_per_task()
        self.bytes_per_task_ = self.params_per_task_ * theta0.element_size() + 4 * self.indices_per_task_

    # ------------------------------------------------------------------ predict
    def task_parameters(self, tasks: Any) -> Any:
        """``theta_i`` of the given tasks (labels), a tensor of shape ``(n, P)``."""
        self._check_fitted()
        labels = v.check_task_labels(np.atleast_1d(np.asarray(tasks)), np.atleast_1d(np.asarray(tasks)).shape[0])
        return self._thetas(require_torch().from_numpy(self._index.lookup(labels)))

    def _thetas(self, index: Any) -> Any:
        from .adapter import scatter_sparse

        dense, b_idx, b_val = self.task_state_.take(index)
        b = scatter_sparse(b_idx, b_val, self.n_parameters_) if self.adapter_.sparsity else None
        return self.theta0_ + self.adapter_.delta(self.adapter_.shared, dense, b, len(index))

    def _outputs(self, X: Any, tasks: Any) -> Any:
        with torch_threads(self.n_threads):
            return self._outputs_unpinned(X, tasks)

    def _outputs_unpinned(self, X: Any, tasks: Any) -> Any:
        torch = require_torch()
        self._check_fitted()
        X = v.check_features(X, n_features=self.n_features_in_)
        labels = v.check_task_labels(tasks, X.shape[0])
        index = self._index.lookup(labels, "tasks")
        present, local = np.unique(index, return_inverse=True)
        rows = TaskRows.build(X, None, local, present.shape[0], self.theta0_.dtype)
        parts, order = [], []
        with torch.no_grad():
            for batch in task_batches(present.shape[0], max(self.task_batch_size, 64), None, rows.counts):
                Xb, _, mask = rows.batch(batch)
                out = prepare_outputs(batched_forward(self.net_, self.space_,
                                                      self._thetas(torch.from_numpy(present[batch])), Xb), self.loss)
                parts.append(out[mask])
                order.append(np.concatenate([rows.order[rows.starts[i]:rows.starts[i] + rows.counts[i]]
                                             for i in batch]))
        out = torch.cat(parts)
        result = torch.empty_like(out)
        result[torch.from_numpy(np.concatenate(order))] = out
        return result

    def predict(self, X: Any, tasks: Any) -> np.ndarray:
        """Each row predicted by its own task's network ``f(x; theta_i)``: values (regression) or class labels.

        Parameters
        ----------
        X : array-like of shape (N, d)
        tasks : array-like of shape (N,)
            Labels of fitted tasks (an unknown label is an error naming it; :meth:`adapt` fits new tasks).
        """
        out = self._outputs(X, tasks)
        if self.loss == "mse":
            return out.double().numpy()
        return self.classes_[out.argmax(-1).numpy()]

    def predict_proba(self, X: Any, tasks: Any) -> np.ndarray:
        """Class probabilities, shape ``(N, c)`` in the order of ``classes_`` (classification only)."""
        if self.loss != "cross_entropy":
            raise AttributeError("predict_proba needs loss='cross_entropy'")
        return require_torch().softmax(self._outputs(X, tasks), dim=-1).double().numpy()

    def score(self, X: Any, y: Any, tasks: Any) -> float:
        """R^2 (regression) or accuracy (classification), the scikit-learn convention (higher is better)."""
        pred = self.predict(X, tasks)
        if self.loss == "mse":
            from sklearn.metrics import r2_score

            return float(r2_score(v.check_targets(y, pred.shape[0]), pred))
        return float(np.mean(pred == np.asarray(y)))

    def rmse(self, X: Any, y: Any, tasks: Any) -> float:
        """Root mean squared error of :meth:`predict` (regression)."""
        pred = self.predict(X, tasks)
        return float(np.sqrt(np.mean((pred - v.check_targets(y, pred.shape[0])) ** 2)))

    # ------------------------------------------------------------------ new tasks
    def adapt(self, X: Any, y: Any, tasks: Any, n_epochs: int | None = None) -> TaskNetworkEstimator:
        """Fit tasks never seen in training with everything shared frozen (SPEC §5) and add them to the model.

        Every new task runs ``n_epochs`` (default ``adapt_epochs``) visits of ``task_steps`` per-task steps, batched
        over the new tasks. A label already in ``tasks_`` is refused.
        """
        with torch_threads(self.n_threads):
            return self._adapt(X, y, tasks, n_epochs)

    def _adapt(self, X: Any, y: Any, tasks: Any, n_epochs: int | None) -> TaskNetworkEstimator:
        torch = require_torch()
        self._check_fitted()
        X = v.check_features(X, n_features=self.n_features_in_)
        y = self._targets(y, X.shape[0], fitting=False)
        labels = v.check_task_labels(tasks, X.shape[0])
        epochs = v.check_int("n_epochs", self.adapt_epochs if n_epochs is None else n_epochs, 1)
        new, index = np.unique(labels, return_inverse=True)
        if self.tasks_.dtype.kind != new.dtype.kind and {self.tasks_.dtype.kind, new.dtype.kind} != {"i", "u"}:
            raise ValueError(f"tasks must hold labels of the fitted tasks' type ({self.tasks_.dtype}), got "
                             f"{new.dtype}")
        known = np.isin(new, self.tasks_)
        if known.any():
            raise ValueError(f"tasks {new[known][:5].tolist()} were already fitted; adapt() fits new tasks only")
        config = self._config()
        data = TaskRows.build(X, y, index, new.shape[0], self.theta0_.dtype)
        generator = torch.Generator().manual_seed(int(np.random.default_rng(self.random_state).integers(2**62)))
        state = TaskState.empty(self.adapter_, new.shape[0], generator, self.theta0_.dtype)
        for _ in range(epochs):
            for batch in task_batches(new.shape[0], config.task_batch_size, None, data.counts):
                Xb, yb, mask = data.batch(batch)
                bt = torch.from_numpy(batch)
                dense, b_idx, b_val, _ = task_step(self.net_, self.space_, self.adapter_, self.theta0_,
                                                   self.adapter_.shared, *state.take(bt), Xb, yb, mask, config)
                state.put(bt, dense, b_idx, b_val)
        all_labels = np.concatenate([self.tasks_, new])
        order = torch.from_numpy(np.argsort(all_labels, kind="stable"))
        old = self.task_state_
        merged = TaskState(dense={k: torch.cat([old.dense[k], state.dense[k]])[order] for k in old.dense},
                           b_idx=torch.cat([old.b_idx, state.b_idx])[order],
                           b_val=torch.cat([old.b_val, state.b_val])[order])
        self.task_state_ = merged
        self.tasks_ = all_labels[order.numpy()]
        self._index = TaskIndex(self.tasks_)
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the model to a ``.safetensors`` file (format: :mod:`lorsa.nn.io`; no pickle)."""
        self._check_fitted()
        chosen = set(self.space_.names)
        tensors = {"theta0": self.theta0_, "b_idx": self.task_state_.b_idx, "b_val": self.task_state_.b_val}
        tensors.update({f"shared.{k}": t for k, t in self.adapter_.to_arrays().items()})
        tensors.update({f"task.{k}": t for k, t in self.task_state_.dense.items()})
        tensors.update({f"module.{k}": t for k, t in self.net_.state_dict().items() if k not in chosen})
        params = {k: plain_value(val) for k, val in self.get_params(deep=False).items() if k != "module"}
        attributes = {
            "tasks": self.tasks_.tolist(), "tasks_kind": "str" if self.tasks_.dtype.kind == "U" else "int",
            "classes": None if self.loss == "mse" else self.classes_.tolist(), "n_features": self.n_features_in_,
            "loss_history": list(self.loss_history_), "parameter_names": list(self.space_.names),
            "module_class": type(self.net_).__name__, "module_state": self.space_.fingerprint(self.net_)}
        write_network_file(path, type(self).__name__, tensors, {"params": params, "attributes": attributes})

    @classmethod
    def load(cls, path: str | os.PathLike, module: Any) -> TaskNetworkEstimator:
        """Read a model written by :meth:`save` into ``module`` (a network of the same architecture: its
        parameter and buffer names and shapes must match the file's)."""
        torch = require_torch()
        tensors, meta = read_network_file(path, cls.__name__)
        where = f"model file {str(path)!r}"
        attrs = meta["attributes"]
        try:
            est = cls(module=module, **meta["params"])
            net, space = est._network()
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{where} does not fit the given module: {exc}") from exc
        if space.fingerprint(net) != attrs["module_state"] or list(space.names) != attrs["parameter_names"]:
            raise ModelFileError(f"{where} was saved from a {attrs['module_class']} with parameters "
                                 f"{attrs['module_state']}; the given {type(net).__name__} has "
                                 f"{space.fingerprint(net)}")
        try:
            net.load_state_dict({k[len("module."):]: t for k, t in tensors.items() if k.startswith("module.")},
                                strict=False)
            adapter = est._make_adapter(space, net, est._torch_dtype())
            adapter.load_arrays({k[len("shared."):]: t for k, t in tensors.items() if k.startswith("shared.")})
            state = TaskState(dense={k[len("task."):]: t.clone() for k, t in tensors.items() if k.startswith("task.")},
                              b_idx=tensors["b_idx"].clone(), b_val=tensors["b_val"].clone())
            kind = attrs["tasks_kind"]
            tasks = np.asarray(attrs["tasks"], dtype=str if kind == "str" else np.int64)
            theta0 = tensors["theta0"].clone()
            if theta0.shape != (space.size,) or state.b_idx.shape[0] != tasks.shape[0]:
                raise ValueError(f"theta0 {tuple(theta0.shape)} for P = {space.size}, {tasks.shape[0]} tasks")
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ModelFileError(f"{where} is inconsistent: {exc}") from exc
        with torch.no_grad():
            for name, value in space.unflatten(theta0).items():
                net.get_parameter(name).copy_(value)
        est._set_fitted(net, space, adapter, theta0, state, tasks, int(attrs["n_features"]))
        est.loss_history_ = list(attrs["loss_history"])
        if attrs["classes"] is not None:
            est.classes_ = np.asarray(attrs["classes"])
        return est


class NetworkLRS(TaskNetworkEstimator):
    """Low-rank + sparse personalisation of a network: task ``i`` runs ``theta_i = theta_0 + U w_i + b_i``
    (SPEC §9, the paper's Appendix A).

    ``theta_0`` and ``U`` (``P x r``, orthonormal columns) are shared, ``w_i in R^r`` and the ``k``-sparse
    ``b_i in R^P`` (its support anywhere among the personalised parameters) are the task's own: ``r + k`` numbers
    and ``k`` indices per task. Training (:mod:`lorsa.nn.training`): ``pretrain_epochs`` epochs of the single
    network, ``U`` started at the top-``r`` directions of the per-task gradients there (``init="gradients"``) or
    at random, then epochs alternating per-task steps (Adam on ``w_i``, iterative hard thresholding on ``b_i``)
    and shared steps (Adam on ``theta_0``, ``U``) over mini-batches of tasks.

    Parameters
    ----------
    module : torch.nn.Module
    rank : int, default 2
        ``r``, ``0 <= r <= P`` (0: sparse fine-tuning with a shared ``theta_0``).
    sparsity : int, default 8
        ``k``, ``0 <= k <= P`` (0: representation learning).
    init : {"gradients", "random"}, default "gradients"
    solver : {"pursuit", "gradient"}, default "pursuit"
        Per-task step: Gauss-Newton subspace pursuit on ``(w_i, b_i)`` jointly (:mod:`lorsa.nn.pursuit`; ``r + 2k``
        forward-mode products per step), or Adam on ``w_i`` with normalised iterative hard thresholding on ``b_i``
        (cheaper per step, slower to find the support).
    Others: see :class:`TaskNetworkEstimator`.
    """

    def __init__(self, module: Any = None, rank: int = 2, sparsity: int = 8, *, parameters: Any = None,
                 loss: str = "mse", init: str = "gradients", solver: str = "pursuit", n_epochs: int = 30,
                 pretrain_epochs: int = 20,
                 task_batch_size: int = 64, task_steps: int = 5, task_lr: float = 0.05, shared_lr: float = 0.01,
                 shared_steps: int = 5, ridge: float = 0.0, adapt_epochs: int = 30, dtype: str = "float32",
                 n_threads: int | None = 1,
                 random_state: int | None = None, verbose: bool = False) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.init = init
        self.solver = solver
        self._common_init(module, parameters, loss, n_epochs, pretrain_epochs, task_batch_size, task_steps,
                          task_lr, shared_lr, shared_steps, ridge, adapt_epochs, dtype, n_threads, random_state,
                          verbose)

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        r = v.check_int("rank", self.rank, 0, space.size)
        k = v.check_int("sparsity", self.sparsity, 0, space.size)
        v.check_choice("init", self.init, ("gradients", "random"))
        return LRSAdapter(space.size, r, k, dtype=dtype)

    def _init_basis(self, net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState,
                    data: TaskRows, config: TrainConfig, generator: Any) -> None:
        torch = require_torch()
        assert isinstance(adapter, LRSAdapter)
        if not adapter.rank:
            return
        if self.init == "gradients":
            adapter.set_basis(initial_basis(net, space, adapter, theta0, state, data, config))
        else:
            adapter.set_basis(torch.randn(adapter.basis_rows, adapter.rank, generator=generator,
                                          dtype=adapter.dtype))
