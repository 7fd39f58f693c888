"""Which llama.cpp CPU variant runs: chosen from the CPU's features, never the AMX one."""

from __future__ import annotations

from engine.backends import X86_VARIANTS, _libraries, choose_variant, cpu_features, load

ALL = sorted(X86_VARIANTS)

# /proc/cpuinfo flags (the ones that matter) of real CPUs.
SAPPHIRE_RAPIDS = frozenset(
    "sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni "
    "avx512_bf16 avx_vnni amx_tile amx_int8 amx_bf16".split()
)
ICE_LAKE_SERVER = frozenset(
    "sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni".split()
)
ZEN3 = frozenset("sse4_2 avx f16c fma avx2 bmi2".split())
ALDER_LAKE = frozenset("sse4_2 avx f16c fma avx2 bmi2 avx_vnni".split())
OLD_LAPTOP = frozenset("sse4_2 avx".split())  # Sandy Bridge: no AVX2, no FMA


def test_a_cpu_with_amx_never_gets_the_amx_variant():
    name, skipped = choose_variant(ALL, SAPPHIRE_RAPIDS)
    assert name == "zen4"  # every AVX-512 extension it has, without the AMX path
    assert skipped == ("sapphirerapids: its AMX matrix path crashes (ggml-org/llama.cpp#20824)",)


def test_each_cpu_gets_the_best_variant_it_can_run():
    assert choose_variant(ALL, ICE_LAKE_SERVER) == ("icelake", ())
    assert choose_variant(ALL, ZEN3) == ("haswell", ())
    assert choose_variant(ALL, ALDER_LAKE) == ("alderlake", ())
    assert choose_variant(ALL, OLD_LAPTOP) == ("sandybridge", ())
    assert choose_variant(ALL, frozenset()) == ("x64", ())


def test_only_variants_that_were_built_are_chosen():
    assert choose_variant(["x64", "haswell", "sapphirerapids"], SAPPHIRE_RAPIDS)[0] == "haswell"
    assert choose_variant([], SAPPHIRE_RAPIDS) == (None, ())


def test_without_known_features_the_libraries_own_check_decides_but_amx_is_still_skipped():
    scores = {"x64": 1, "haswell": 64, "icelake": 1500, "sapphirerapids": 4000, "armv8.2_1": 0}
    name, skipped = choose_variant(sorted(scores), None, scores.__getitem__)
    assert name == "icelake" and skipped[0].startswith("sapphirerapids")
    assert choose_variant(["armv8.0_1", "armv8.2_1"], None, {"armv8.0_1": 1, "armv8.2_1": 0}.__getitem__)[0] == "armv8.0_1"


def test_this_machine_loads_the_variant_its_features_choose():
    choice = load()
    assert choice.cpu_variant != "built in", "llama.cpp was built without CPU variants (see the Makefile)"
    built = sorted(_libraries("cpu"))
    assert len(built) >= 10, built  # every x86 level, so that a stranger's CPU finds its own
    features = cpu_features()
    if features is not None:
        assert choice.cpu_variant == choose_variant(built, features)[0]
    assert "sapphirerapids" not in choice.cpu_variant
    assert choice.describe().startswith(f"llama.cpp CPU variant {choice.cpu_variant}")
