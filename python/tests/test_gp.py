"""poolrank.GP against an exact GP written in NumPy, and the input checks."""

import numpy as np
import pytest

import poolrank


def tanimoto(p, q):
    inter = p @ q.T
    return inter / (p.sum(1)[:, None] + q.sum(1)[None, :] - inter)


def minmax(p, q):
    num = np.minimum(p[:, None, :], q[None, :, :]).sum(-1)
    den = np.maximum(p[:, None, :], q[None, :, :]).sum(-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)


def exact_gp(k_train, k_cross, y, noise, signal_var=1.0):
    """Mean and latent sd in label units, labels standardised as the engine does."""
    mu, sd = y.mean(), y.std()
    z = (y - mu) / sd
    kmat = signal_var * k_train + noise * np.eye(len(y))
    ks = signal_var * k_cross
    mean = ks @ np.linalg.solve(kmat, z) * sd + mu
    var = signal_var - np.einsum("ij,ji->i", ks, np.linalg.solve(kmat, ks.T))
    return mean, np.sqrt(np.maximum(var, 0)) * sd


@pytest.fixture
def bits():
    rng = np.random.default_rng(7)
    x = rng.random((260, 1000)) < 0.06
    y = x[:, :40].sum(1) + rng.normal(scale=0.3, size=260)
    return x, y


def test_tanimoto_on_packed_bits_matches_numpy(bits):
    x, y = bits
    packed = np.packbits(x, axis=1)
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(packed[:200], y[:200])
    assert gp.kernel == "tanimoto" and gp.n_train == 200
    mean, sd = gp.predict(packed[200:], return_std=True, backend="cpu")
    xf = x.astype(float)
    want_mean, want_sd = exact_gp(tanimoto(xf[:200], xf[:200]), tanimoto(xf[200:], xf[:200]), y[:200], 0.1)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4 * y.std())
    np.testing.assert_allclose(sd, want_sd, rtol=1e-3, atol=1e-3 * y.std())
    # Unpacked booleans are the same fingerprints (1000 bits: the packed form pads to 1008).
    gp_bool = poolrank.GP(noise=0.1, signal_var=1.0).fit(x[:200], y[:200])
    np.testing.assert_allclose(gp_bool.predict(x[200:], backend="cpu"), mean, rtol=1e-6)


def test_minmax_on_counts_dense_and_sparse(bits):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.15, size=(150, 300)).astype(np.uint16)
    y = counts[:, :20].sum(1) + rng.normal(scale=0.2, size=150)
    gp = poolrank.GP(noise=0.05, signal_var=1.0).fit(counts[:100], y[:100])
    assert gp.kernel == "minmax"
    mean, sd = gp.predict(counts[100:], return_std=True, backend="cpu")
    c = counts.astype(float)
    want_mean, want_sd = exact_gp(minmax(c[:100], c[:100]), minmax(c[100:], c[:100]), y[:100], 0.05)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4 * y.std())
    np.testing.assert_allclose(sd, want_sd, rtol=1e-3, atol=1e-3 * y.std())
    csr = scipy_sparse.csr_matrix(counts)
    gp_csr = poolrank.GP(noise=0.05, signal_var=1.0).fit(csr[:100], y[:100])
    m2, s2 = gp_csr.predict(csr[100:], return_std=True, backend="cpu")
    np.testing.assert_array_equal(m2, mean)
    np.testing.assert_array_equal(s2, sd)


def test_rbf_on_dense_features_fits_hyperparameters():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 3))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] + rng.normal(scale=0.05, size=120)
    gp = poolrank.GP(kernel="rbf").fit(x[:100], y[:100])
    assert gp.lengthscale is not None and gp.fit_info["optimised"]
    mean = gp.predict(x[100:].astype(np.float32), backend="cpu")
    # A smooth function with little noise: the fitted model must predict it well.
    assert np.corrcoef(mean, y[100:])[0, 1] > 0.9


def test_tiles_and_non_contiguous_arrays_give_the_same_answer(bits):
    x, y = bits
    packed = np.packbits(x, axis=1)
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(packed[:200], y[:200])
    whole = gp.predict(packed, backend="cpu")
    assert np.array_equal(gp.predict(packed, backend="cpu", batch_size=7), whole)
    # Every other row: a strided view, read through its strides.
    strided = packed[::2]
    assert not strided.flags["C_CONTIGUOUS"]
    assert np.array_equal(gp.predict(strided, backend="cpu"), whole[::2])
    fortran = np.asfortranarray(packed)
    assert np.array_equal(gp.predict(fortran, backend="cpu"), whole)


def test_bad_input_raises_clear_errors(bits):
    x, y = bits
    packed = np.packbits(x, axis=1)
    with pytest.raises(ValueError, match="y has 10 values but X has 200 rows"):
        poolrank.GP().fit(packed[:200], y[:10])
    bad = y[:200].copy()
    bad[17] = np.nan
    with pytest.raises(ValueError, match=r"y\[17\] is NaN"):
        poolrank.GP().fit(packed[:200], bad)
    with pytest.raises(ValueError, match="2-D array"):
        poolrank.GP().fit(packed[0], y[:1])
    with pytest.raises(ValueError, match="dtype complex128"):
        poolrank.GP().fit(np.zeros((3, 2), dtype=complex), y[:3])
    with pytest.raises(ValueError, match="not fitted"):
        poolrank.GP().predict(packed)
    with pytest.raises(ValueError, match="kernel"):
        poolrank.GP(kernel="cosine")
    with pytest.raises(ValueError, match="row 1, column 0: count -2"):
        poolrank.GP().fit(np.array([[1, 0], [-2, 1]], dtype=np.int32), [1.0, 2.0])
    dense = np.ones((3, 2))
    dense[2, 1] = np.inf
    with pytest.raises(ValueError, match="row 2, column 1"):
        poolrank.GP(kernel="rbf").fit(dense, [1.0, 2.0, 3.0])
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(packed[:200], y[:200])
    with pytest.raises(ValueError, match="fitted on"):
        gp.predict(np.ones((2, 5), dtype=np.float32), backend="cpu")
    with pytest.raises(ValueError, match="backend"):
        gp.predict(packed, backend="tpu")


def test_gpu_request_without_an_allowed_adapter_is_a_device_error(bits, monkeypatch):
    x, y = bits
    monkeypatch.delenv("POOLRANK_ALLOW_SOFTWARE_GPU", raising=False)
    listing = poolrank.devices()
    if listing["chosen"] is not None:
        pytest.skip("this machine has a hardware GPU")
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(np.packbits(x[:50], axis=1), y[:50])
    with pytest.raises(poolrank.DeviceError):
        gp.predict(np.packbits(x[50:], axis=1), backend="gpu")
    assert issubclass(poolrank.DeviceError, RuntimeError)


def test_gpu_predict_on_the_software_adapter_matches_cpu(bits, monkeypatch):
    x, y = bits
    monkeypatch.setenv("POOLRANK_ALLOW_SOFTWARE_GPU", "1")
    if poolrank.devices()["chosen"] is None:
        pytest.fail("no wgpu adapter: install mesa-vulkan-drivers (llvmpipe)")
    packed = np.packbits(x, axis=1)
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(packed[:200], y[:200])
    m_cpu, s_cpu = gp.predict(packed[200:], return_std=True, backend="cpu")
    m_gpu, s_gpu = gp.predict(packed[200:], return_std=True, backend="gpu")
    np.testing.assert_allclose(m_gpu, m_cpu, rtol=1e-4, atol=1e-4 * y.std())
    np.testing.assert_allclose(s_gpu, s_cpu, rtol=1e-3, atol=1e-3 * y.std())


def test_exact_and_inducing_choose_the_model():
    """Above 5,000 labels the fit switches to inducing points unless exact=True; inducing=M
    asks for M at any size; select takes both and reports the model in its summary."""
    rng = np.random.default_rng(3)
    x = np.packbits(rng.random((3000, 256)) < 0.1, axis=1)
    y = rng.normal(size=3000)
    fixed = dict(kernel="tanimoto", noise=0.1, signal_var=1.0)

    # 5,001 labels on 25 distinct rows: the greedy choice stops at the 25 (duplicates never
    # become inducing points), which keeps the sparse fit cheap.
    n = 5001
    many = np.tile(x[:25], (n // 25 + 1, 1))[:n]
    y_many = rng.normal(size=n)
    auto = poolrank.GP(**fixed).fit(many, y_many)
    assert auto.fit_info["approximation"] == "vfe"
    assert auto.n_train == auto.fit_info["sparse"]["used"] == 25
    assert auto.fit_info["sparse"]["requested"] == 2000
    exact = poolrank.GP(exact=True, **fixed).fit(many, y_many)
    assert exact.fit_info["approximation"] == "exact"
    assert "sparse" not in exact.fit_info
    assert exact.n_train == n

    few = poolrank.GP(inducing=40, **fixed).fit(x[:300], y[:300])
    assert few.fit_info["approximation"] == "vfe"
    assert few.n_train == 40
    assert len(set(few.fit_info["sparse"]["rows"])) == 40

    labeled = np.arange(0, 3000, 10)
    _, _, summary = poolrank.select(
        x[:3000], labeled, y[labeled], batch=5, inducing=40, return_summary=True, **fixed
    )
    assert summary["fit"]["approximation"] == "vfe"
    assert len(summary["fit"]["inducing_ids"]) == 40
    assert set(map(int, summary["fit"]["inducing_ids"])) <= set(labeled.tolist())

    with pytest.raises(ValueError, match="exact=True cannot be combined with inducing"):
        poolrank.GP(exact=True, inducing=40)
    with pytest.raises(ValueError, match="exact=True cannot be combined with inducing"):
        poolrank.select(x[:300], labeled[:20], y[:20], exact=True, inducing=40)


def test_save_load_and_pickle_give_the_same_predictions(bits, tmp_path):
    import pickle

    x, y = bits
    packed = np.packbits(x, axis=1)
    for kwargs in ({}, {"inducing": 30}):
        gp = poolrank.GP(**kwargs).fit(packed[:200], y[:200])
        want_mean, want_sd = gp.predict(packed[200:], return_std=True, backend="cpu")
        path = tmp_path / "gp.model"
        gp.save(path)
        for back in (poolrank.GP.load(path), pickle.loads(pickle.dumps(gp))):
            assert back.kernel == gp.kernel and back.n_train == gp.n_train
            assert back.noise == gp.noise and back.signal_var == gp.signal_var
            assert back.fit_info == gp.fit_info
            mean, sd = back.predict(packed[200:], return_std=True, backend="cpu")
            np.testing.assert_array_equal(mean, want_mean)
            np.testing.assert_array_equal(sd, want_sd)
    # An unfitted GP pickles with its settings.
    fresh = pickle.loads(pickle.dumps(poolrank.GP(kernel="minmax", noise=0.2)))
    assert fresh.kernel == "minmax"
    with pytest.raises(ValueError, match="not fitted"):
        fresh.save(tmp_path / "x.model")


def test_a_corrupted_or_foreign_model_file_is_a_value_error(bits, tmp_path):
    x, y = bits
    gp = poolrank.GP(noise=0.1, signal_var=1.0).fit(x[:50], y[:50])
    path = tmp_path / "gp.model"
    gp.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 4
    (tmp_path / "bad.model").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        poolrank.GP.load(tmp_path / "bad.model")
    (tmp_path / "text.model").write_text("id,score\n")
    with pytest.raises(ValueError, match="not a poolrank model file"):
        poolrank.GP.load(tmp_path / "text.model")
    with pytest.raises(OSError):
        poolrank.GP.load(tmp_path / "missing.model")


def test_a_model_saved_by_the_cli_predicts_what_select_scored(bits, tmp_path, poolrank_cli):
    x, y = bits
    packed = np.packbits(x, axis=1)
    np.save(tmp_path / "pool.npy", packed)
    with open(tmp_path / "labels.csv", "w") as f:
        f.write("id,score\n")
        for i in range(0, 260, 3):
            f.write(f"{i},{float(y[i])!r}\n")
    poolrank_cli("fit", "--pool", tmp_path / "pool.npy", "--labels", tmp_path / "labels.csv",
                 "--minimize", "--quiet", "--save-model", tmp_path / "m.model")
    poolrank_cli("select", "--pool", tmp_path / "pool.npy", "--model", tmp_path / "m.model",
                 "--batch", "20", "--backend", "cpu", "--quiet", "--out", tmp_path / "batch.csv")
    gp = poolrank.GP.load(tmp_path / "m.model")
    rows = np.genfromtxt(tmp_path / "batch.csv", delimiter=",", names=True)
    mean, sd = gp.predict(packed[rows["index"].astype(int)], return_std=True, backend="cpu")
    # In label units, though the model was fitted to the negated labels (--minimize).
    np.testing.assert_allclose(mean, rows["mean"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sd, rows["sd"], rtol=1e-4, atol=1e-5)
    # Labeled rows are never picked.
    assert not set(rows["index"].astype(int)) & set(range(0, 260, 3))
