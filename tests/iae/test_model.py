import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.data import gaussian_line_family
from bayes_unmix.iae import IAE, NetworkConfig, TrainConfig, create_iae, fit
from bayes_unmix.iae.network import residual_weights


@pytest.mark.parametrize(
    "network",
    [
        NetworkConfig(n_channels=40, n_layers=3),
        NetworkConfig(n_channels=40, n_layers=1, latent_width=8, output="unit_sum"),
        NetworkConfig(n_channels=40, n_components=3, n_layers=2, hidden_width=32, latent_width=8),
        NetworkConfig(n_channels=40, kind="cnn", filters=(4, 8), kernels=(5, 3), strides=(1, 2), latent_width=6),
        NetworkConfig(n_channels=37, n_components=2, kind="cnn", strides=(1, 2, 2, 3), output="nonnegative"),
    ],
    ids=["mlp", "mlp-compressed-unit-sum", "mlp-joint", "cnn", "cnn-joint-odd-length"],
)
def test_shapes_anchor_weights_and_gradients(network):
    C, n = network.n_components, network.n_channels
    anchors = jax.random.uniform(jax.random.key(0), (3, C, n)) + 0.1
    iae = create_iae(jax.random.key(1), anchors, network)
    assert iae.encode(anchors).shape == (3, network.code_width)
    # anchors reproduce themselves: their own weights are one-hot
    weights = jax.jit(IAE.weights)(iae, anchors)
    np.testing.assert_allclose(weights, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-12)

    decoder = iae.decoder()
    lam = jnp.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    out = jax.jit(decoder)(lam)
    assert out.shape == (2, C, n)
    np.testing.assert_allclose(out[1], iae.decode(iae.anchor_codes()[0]), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(decoder)(lam), out, rtol=1e-12)
    if network.output == "unit_sum":
        assert float(out.min()) >= 0
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-12)
    if network.output == "nonnegative":
        assert float(out.min()) >= 0

    grad_lam = jax.jit(jax.grad(lambda w: jnp.sum(decoder(w) ** 2)))(lam)
    assert grad_lam.shape == lam.shape and bool(jnp.all(jnp.isfinite(grad_lam)))
    grad_params = jax.jit(jax.grad(lambda p: jnp.sum(iae.replace(params=p).synthesize(lam) ** 2)))(iae.params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grad_params))


def test_residual_weights_defined_for_every_depth():
    assert residual_weights(1) == [0.0]
    r = residual_weights(4)
    assert r[0] == 0.0 and abs(r[-1] - 0.1) < 1e-15 and r == sorted(r)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="unknown network kind"):
        NetworkConfig(n_channels=10, kind="rnn")
    with pytest.raises(ValueError, match="unknown activation"):
        NetworkConfig(n_channels=10, activation="swishy")
    with pytest.raises(ValueError, match="anchors must have shape"):
        create_iae(jax.random.key(0), jnp.ones((2, 1, 9)), NetworkConfig(n_channels=10))
    with pytest.raises(ValueError, match="at least two anchors"):
        create_iae(jax.random.key(0), jnp.ones((1, 1, 10)), NetworkConfig(n_channels=10))


def test_training_lowers_validation_error_and_is_deterministic(line_data):
    network = NetworkConfig(n_channels=50, n_layers=2, hidden_width=32)
    iae0 = create_iae(jax.random.key(0), line_data["anchors"][:, None, :], network, scale=line_data["train"].mean(0))
    config = TrainConfig(epochs=150, batch_size=32, learning_rate=3e-3, eval_every=50, noise_snr_db=40.0)
    iae1, history = fit(iae0, line_data["train"], line_data["valid"], config, key=jax.random.key(5), progress=False)
    iae2, _ = fit(iae0, line_data["train"], line_data["valid"], config, key=jax.random.key(5), progress=False)

    def valid_err(iae):
        x = line_data["valid"][:, None, :]
        return float(jnp.mean(jnp.sum((iae.reconstruct(x) - x) ** 2, (-2, -1)) / jnp.sum(x**2, (-2, -1))))

    assert valid_err(iae1) < 0.1 * valid_err(iae0)
    assert history.epochs == [50, 100, 150] and history.best_epoch in history.epochs
    assert max(history.valid_nmse_db) == history.valid_nmse_db[history.epochs.index(history.best_epoch)]
    for a, b in zip(jax.tree_util.tree_leaves(iae1.params), jax.tree_util.tree_leaves(iae2.params)):
        np.testing.assert_array_equal(a, b)


def test_joint_cnn_training_lowers_error():
    rng = np.random.default_rng(3)
    pos = rng.uniform(8, 30, 64)
    # two components sharing one parameter: lines moving in opposite directions
    data = np.stack([gaussian_line_family(pos, 40), gaussian_line_family(38 - pos, 40)], axis=1)
    anchors = np.stack(
        [gaussian_line_family(np.array([8.0, 30.0]), 40), gaussian_line_family(np.array([30.0, 8.0]), 40)], 1
    )
    network = NetworkConfig(n_channels=40, n_components=2, kind="cnn", filters=(8, 8), kernels=(5, 5), strides=(1, 2))
    iae0 = create_iae(jax.random.key(0), anchors, network, scale=data.mean(0))
    config = TrainConfig(epochs=40, batch_size=16, learning_rate=3e-3, eval_every=40)
    iae1, _history = fit(iae0, data, None, config, key=jax.random.key(1), progress=False)
    err = lambda m: float(jnp.mean((m.reconstruct(data) - data) ** 2))
    assert err(iae1) < 0.2 * err(iae0)


def test_fit_rejects_bad_training_data(line_data):
    network = NetworkConfig(n_channels=50, n_layers=1)
    iae = create_iae(jax.random.key(0), line_data["anchors"][:, None, :], network)
    with pytest.raises(ValueError, match="shape"):
        fit(iae, np.ones((4, 49)), key=jax.random.key(0), progress=False)
    bad = line_data["train"].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit(iae, bad, key=jax.random.key(0), progress=False)
