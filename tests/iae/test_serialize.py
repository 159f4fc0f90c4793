import json
import zipfile

import jax
import numpy as np
import pytest

from bayes_unmix.iae import NetworkConfig, create_iae
from bayes_unmix.iae.serialize import ModelFileError, load, load_bundle, save, save_bundle


def test_round_trip_is_exact(trained_iae, tmp_path, line_data):
    model = trained_iae.with_metadata(energy_kev=list(range(50)), parameter="position")
    path = save(model, tmp_path / "m.npz")
    loaded = load(path)
    assert loaded.network == model.network and loaded.interpolation == model.interpolation
    assert loaded.metadata == model.metadata
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(a, b)
    x = line_data["valid"][:, None, :]
    np.testing.assert_array_equal(loaded.reconstruct(x), model.reconstruct(x))


def test_cnn_joint_round_trip(tmp_path):
    network = NetworkConfig(n_channels=30, n_components=2, kind="cnn", filters=(4, 4), kernels=(3, 3), strides=(1, 2))
    model = create_iae(jax.random.key(0), jax.random.uniform(jax.random.key(1), (2, 2, 30)), network)
    loaded = load(save(model, tmp_path / "cnn.npz"))
    np.testing.assert_array_equal(loaded.decoder()(np.array([0.3, 0.7])), model.decoder()(np.array([0.3, 0.7])))


@pytest.fixture()
def saved(trained_iae, tmp_path):
    return save(trained_iae, tmp_path / "model.npz")


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load(saved)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a model")
    with pytest.raises(ModelFileError):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


def _rewrite(path, mutate):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(path, **arrays)


def test_tampered_array_fails_checksum(saved):
    def mutate(arrays):
        arrays["iae/anchors"] = arrays["iae/anchors"] * 1.0001

    _rewrite(saved, mutate)
    with pytest.raises(ModelFileError, match="checksum"):
        load(saved)


def test_plain_npz_is_not_a_model(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.ones(3))
    with pytest.raises(ModelFileError, match="no header"):
        load(path)


def test_architecture_mismatch(saved):
    def mutate(arrays):
        header = json.loads(arrays["__header__"].tobytes())
        header["models"]["iae"]["network"]["hidden_width"] = 65
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)

    _rewrite(saved, mutate)
    with pytest.raises(ModelFileError, match="should have shape"):
        load(saved)


def test_newer_format_is_refused(saved):
    def mutate(arrays):
        header = json.loads(arrays["__header__"].tobytes())
        header["format_version"] = 99
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)

    _rewrite(saved, mutate)
    with pytest.raises(ModelFileError, match="format 99"):
        load(saved)


def test_saved_file_is_a_plain_zip_without_pickles(saved):
    with zipfile.ZipFile(saved) as z:
        assert "__header__.npy" in z.namelist()
    with np.load(saved, allow_pickle=False) as npz:
        assert "iae/anchors" in npz.files


def test_bundle_round_trip_and_single_load_refusal(trained_iae, tmp_path):
    path = save_bundle({"Co60": trained_iae, "Cs137": trained_iae}, tmp_path / "b.npz", {"nuclides": ["Co60", "Cs137"]})
    models, metadata = load_bundle(path)
    assert sorted(models) == ["Co60", "Cs137"] and metadata == {"nuclides": ["Co60", "Cs137"]}
    np.testing.assert_array_equal(models["Cs137"].anchors, trained_iae.anchors)
    with pytest.raises(ModelFileError, match="load_bundle"):
        load(path)
    with pytest.raises(ValueError, match="no '/'"):
        save_bundle({"a/b": trained_iae}, tmp_path / "c.npz")
