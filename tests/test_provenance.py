"""Input checksums of the provenance (medgen.provenance.checksums)."""

from __future__ import annotations

from medgen import provenance


def test_a_folder_hashes_its_files_in_order_without_snakemakes_marker(tmp_path):
    folder = tmp_path / "training"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.npz").write_bytes(b"b")
    (folder / "sub" / "a.npz").write_bytes(b"a")
    (folder / provenance.SNAKEMAKE_MARKER).write_bytes(b"")
    single = tmp_path / "table.tsv"
    single.write_text("x\n")
    sums = provenance.checksums([folder, single, tmp_path / "missing.tsv"])
    assert list(sums) == [str(folder / "b.npz"), str(folder / "sub" / "a.npz"), str(single)]
    assert sums[str(single)] == provenance.sha256_file(single)
