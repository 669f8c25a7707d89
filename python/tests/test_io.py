"""Reading pool files from Python: the same fingerprints as the engine reads."""

import numpy as np
import pytest

import poolrank


def write_fps(path, packed, ids):
    # chemfp's FPS: hex of the fingerprint bytes, bit 0 = the low bit of the first byte.
    lines = ["#FPS1", f"#num_bits={packed.shape[1] * 8}"]
    for row, i in zip(packed, ids):
        lsb_first = np.packbits(np.unpackbits(row).reshape(-1, 8)[:, ::-1], axis=1).ravel()
        lines.append(lsb_first.tobytes().hex() + "\t" + i)
    path.write_text("\n".join(lines) + "\n")


def test_fps_and_npy_read_back_as_packed_bits(tmp_path):
    rng = np.random.default_rng(1)
    bits = rng.random((50, 256)) < 0.1
    packed = np.packbits(bits, axis=1)
    ids = [f"m{i}" for i in range(50)]
    write_fps(tmp_path / "pool.fps", packed, ids)
    np.save(tmp_path / "pool.npy", packed)
    got_ids, x = poolrank.read_pool(tmp_path / "pool.fps")
    assert got_ids == ids
    np.testing.assert_array_equal(x, packed)
    got_ids, x = poolrank.read_pool(tmp_path / "pool.npy")
    assert got_ids == [str(i) for i in range(50)]
    np.testing.assert_array_equal(x, packed)
    blocks = list(poolrank.open_pool(tmp_path / "pool.fps", batch_size=16))
    assert [len(i) for i, _ in blocks] == [16, 16, 16, 2]
    np.testing.assert_array_equal(np.vstack([b for _, b in blocks]), packed)


def test_counts_npz_reads_as_scipy_csr(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(2)
    counts = rng.poisson(0.2, size=(30, 64)).astype(np.uint8)
    sparse.save_npz(tmp_path / "pool.npz", sparse.csr_matrix(counts))
    ids, x = poolrank.read_pool(tmp_path / "pool.npz")
    assert len(ids) == 30
    np.testing.assert_array_equal(x.toarray(), counts)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError, match="nope.fps"):
        poolrank.read_pool(tmp_path / "nope.fps")
