"""The two source builds (llama-cpp-python, hnswlib) get one set of portable flags:
packaging/native-build.json, read by scripts/dev.py and by the Nix expression (nix/native-build.nix, used in nix/python.nix)."""

from __future__ import annotations

import shlex

import pytest

X86_BASELINE = {"-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"}


@pytest.mark.parametrize("cpu", ["x86_64", "aarch64"])
def test_nix_and_dev_py_build_with_the_same_flags(nix_eval, dev, cpu: str) -> None:
    nix = nix_eval(f'import ./nix/native-build.nix {{ cpu = "{cpu}"; }}')
    assert nix == dev.portable_build_variables(cpu)
    assert set(nix) == {"llama-cpp-python", "hnswlib"}


def test_the_flags_are_portable(dev) -> None:
    x86 = dev.portable_build_variables("x86_64")
    arm = dev.portable_build_variables("aarch64")
    x86_cmake, arm_cmake = (set(shlex.split(f["llama-cpp-python"]["CMAKE_ARGS"])) for f in (x86, arm))
    # Stated explicitly: inside a Nix build SOURCE_DATE_EPOCH is set, and ggml then defaults them all off.
    assert {"-DGGML_NATIVE=OFF", *X86_BASELINE} <= x86_cmake
    assert "-DGGML_NATIVE=OFF" in arm_cmake and not arm_cmake & X86_BASELINE, "armv8: ggml's defaults"
    assert x86["hnswlib"] == {"HNSWLIB_NO_NATIVE": "1", "CXXFLAGS": "-mavx2 -mfma -mf16c"}
    assert arm["hnswlib"] == {"HNSWLIB_NO_NATIVE": "1"}
    assert not any("native" in flag and "NATIVE=OFF" not in flag for flag in x86_cmake | arm_cmake)


def test_an_unknown_cpu_is_refused(nix_eval, dev) -> None:
    with pytest.raises(AssertionError, match="no portable build flags for riscv64"):
        nix_eval('import ./nix/native-build.nix { cpu = "riscv64"; }')
    with pytest.raises(SystemExit):
        dev.portable_build_variables("riscv64")


def test_a_user_cmake_args_still_wins(dev, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=ON")
    assert dev.build_variables()["llama-cpp-python"] == {"CMAKE_ARGS": "-DGGML_CUDA=ON"}
