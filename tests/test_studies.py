"""Studies (medgen.studies, workflow/papers.smk): the four papers' comparisons in one
invocation, and the summary that sets each claim beside our numbers."""

from __future__ import annotations

import pytest
import yaml

from medgen import config as medgen_config
from medgen import planning
from medgen.errors import MedgenInputError
from medgen.evaluate import replicates
from medgen.studies import describe_budget, load_studies, summarise_studies
from tests.helpers.replicates import anomaly_tables, planned_jobs

from conftest import run_snakemake

ROOT = medgen_config.REPO_ROOT
PAPERS = ROOT / "config" / "studies" / "papers.yaml"


def planned_methods(config: dict, task: str) -> set[str]:
    """Every method the study's run evaluates for ``task`` (families, baselines, ablations,
    synthesis levels)."""
    families = planning.task_families(config, task)
    if task == "synthesis":
        levels = {f"{f}_level{k}" for f in families
                  for k in range(1, planning.synthesis_levels(config, f) + 1)}
        # the voxel-wise regressions are evaluated as voxel_linear, voxel_hgb
        return levels | {f"voxel_{b}" if b in ("linear", "hgb") else b
                         for b in config["synthesis"]["evaluation"]["baselines"]}
    if task == "anomaly":
        return set(planning.anomaly_methods(config))
    if task == "expression":
        return set(families) | set(config["expression"]["evaluation"]["baselines"])
    section = config["expression_inference"]["evaluation"]
    return (set(families) | set(section["baselines"])
            | set(planning.expression_inference_ablations(config)))


def test_the_papers_study_file_names_what_its_runs_evaluate():
    full, small = load_studies(PAPERS), load_studies(PAPERS, "small")
    assert full["budget"] == "full" and small["budget_settings"]["max_epochs"] == 2
    assert len(full["studies"]) == 6
    for name, study in full["studies"].items():
        config = study["run_config"]
        assert config["tasks"] == [study["task"]], name
        assert config["replicates"]["seeds"] == study["seeds"] and len(study["seeds"]) >= 3
        assert set(study["models"]) | set(study["baselines"]) <= planned_methods(
            config, study["task"]), name
        assert small["studies"][name]["run_config"]["replicates"]["seeds"] == [0, 1]
        assert small["studies"][name]["run_config"]["training"]["max_epochs"] == 2
    # the small budget cuts the trained baselines and AnoGAN's mapping too: a fair comparison
    pneumonia = small["studies"]["fanogan_pneumoniamnist"]["run_config"]
    assert pneumonia["anomaly"]["evaluation"]["convae_epochs"] == 2
    assert pneumonia["models"]["anogan"]["params"]["score_steps"] == 50
    assert pneumonia["models"]["fanogan"]["params"]["latent_dim"] == 16  # the rest kept
    assert planning.trained_hparams(pneumonia, "fanogan")["encoder_epochs"] == 2
    synthesis = small["studies"]["synthesis_brats"]["run_config"]
    assert synthesis["synthesis"]["evaluation"]["unet"]["max_epochs"] == 2
    assert planning.generator_l1_hparams(synthesis)["max_epochs"] == 2
    gpl96 = small["studies"]["ggan_gpl96"]["run_config"]
    assert planning.trained_hparams(gpl96, "dgex")["max_epochs"] == 2
    assert full["studies"]["anomaly_brats"]["run_config"]["anomaly"]["evaluation"][
        "convae_epochs"] == 2  # the full budget changes nothing (the config's val choice)


def test_a_budget_cap_never_raises_a_baseline_and_the_summary_says_what_it_cut():
    spec = yaml.safe_load(PAPERS.read_text())
    spec["budgets"]["small"]["max_epochs"] = 15
    studies = load_studies(spec, "small")["studies"]
    assert studies["anomaly_brats"]["run_config"]["anomaly"]["evaluation"][
        "convae_epochs"] == 2  # below the cap: kept
    assert studies["fanogan_pneumoniamnist"]["run_config"]["anomaly"]["evaluation"][
        "convae_epochs"] == 15
    words = describe_budget("small", {"seeds": [0, 1], "max_epochs": 2, "score_steps": 50})
    assert words == ("small (seeds [0, 1]; every trained method (models, ablations and "
                     "trained baselines) capped at 2 epochs; latent mapping (AnoGAN) capped "
                     "at 50 steps)")
    spec["budgets"]["small"]["score_steps"] = 0
    with pytest.raises(MedgenInputError, match=r"budgets.small.score_steps is 0; expected an "
                       "integer >= 1"):
        load_studies(spec, "small")


def test_a_study_carries_its_own_reduced_budget_and_override():
    # the synthesis study ships at a reduced budget (3D on CPU): level 1 only, every trained
    # method of it at 10 epochs; the invocation's budget still cuts further, never raises
    spec = yaml.safe_load(PAPERS.read_text())
    full = load_studies(spec)["studies"]["synthesis_brats"]
    config = full["run_config"]
    assert full["budget_settings"] == {"max_epochs": 10}
    assert planning.synthesis_levels(config, "context_gan") == 1
    assert config["synthesis"]["evaluation"]["unet"]["max_epochs"] == 10
    assert planning.generator_l1_hparams(config)["max_epochs"] == 10
    assert planning.trained_hparams(config, "context_gan")["max_epochs"] == 10
    small = load_studies(spec, "small")["studies"]["synthesis_brats"]
    assert small["budget_settings"] == {"max_epochs": 2, "seeds": [0, 1], "score_steps": 50}
    spec["budgets"]["small"]["max_epochs"] = 30
    assert load_studies(spec, "small")["studies"]["synthesis_brats"]["budget_settings"][
        "max_epochs"] == 10
    # other studies are untouched by it
    assert load_studies(spec)["studies"]["ggan_tcga"]["budget_settings"] == {}
    for key, value, message in (
            ("budget", {"epochs": 5}, r"studies.synthesis_brats.budget has \['epochs'\]"),
            ("budget", {"max_epochs": 0}, r"studies.synthesis_brats.budget.max_epochs is 0"),
            ("override", [1], r"studies.synthesis_brats.override is \[1\]; expected a "
                              "mapping"),
            ("overide", {}, r"study 'synthesis_brats' has \['overide'\]; expected")):
        bad = yaml.safe_load(PAPERS.read_text())
        bad["studies"]["synthesis_brats"][key] = value
        with pytest.raises(MedgenInputError, match=message):
            load_studies(bad)
    bad = yaml.safe_load(PAPERS.read_text())
    bad["studies"]["synthesis_brats"]["override"] = {"models": {"context_gan": {"params": {
        "auto_context_levels": 0}}}}
    with pytest.raises(MedgenInputError, match="study 'synthesis_brats': .*auto_context_levels"):
        load_studies(bad)


def test_a_bad_study_file_names_the_study_and_key(tmp_path):
    spec = yaml.safe_load(PAPERS.read_text())
    spec["studies"]["tybalt_tcga"]["seeds"] = [0]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(MedgenInputError, match="study 'tybalt_tcga': config key "
                       "'replicates.seeds' is \\[0\\]"):
        load_studies(path)
    del spec["studies"]["tybalt_tcga"]["claim"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(MedgenInputError, match="study 'tybalt_tcga' lacks claim"):
        load_studies(path)
    with pytest.raises(MedgenInputError, match="budget 'tiny' is not one of full, small"):
        load_studies(PAPERS, "tiny")
    spec = yaml.safe_load(PAPERS.read_text())
    spec["studies"]["ggan_tcga"]["baselines"] = ["ridge", "lasso"]
    with pytest.raises(MedgenInputError, match=r"studies.ggan_tcga.baselines names \['lasso'\]"
                       r", which its run does not evaluate"):
        load_studies(spec)
    spec = yaml.safe_load(PAPERS.read_text())
    spec["budgets"]["small"] = {"epochs": 2}  # a typo must not train full epochs quietly
    with pytest.raises(MedgenInputError, match=r"budgets.small has \['epochs'\]"):
        load_studies(spec, "small")
    spec = yaml.safe_load(PAPERS.read_text())
    spec["studies"]["tybalt_tcga"]["seeds"] = 5
    with pytest.raises(MedgenInputError, match="studies.tybalt_tcga.seeds is 5; expected a "
                       "non-empty list"):
        load_studies(spec)
    spec["studies"] = ["tybalt_tcga"]
    with pytest.raises(MedgenInputError, match="key 'studies' is"):
        load_studies(spec)


def test_the_summary_sets_the_claim_beside_mean_interval_and_verdict(tmp_path):
    spec = {"results_dir": str(tmp_path / "results"), "budget": "full", "budgets": {"full": {}},
            "studies": {"demo": {
                "config": str(ROOT / "config" / "datasets" / "mni152_demo.yaml"),
                "seeds": list(range(5)), "paper": "Schlegl et al. 2019",
                "claim": "f-AnoGAN beats PCA.", "task": "anomaly", "models": ["fanogan"],
                "baselines": ["pca", "intensity"], "metrics": ["auroc"],
                "budget": {"max_epochs": 3},
                "override": {"anomaly": {"evaluation": {"false_positive_rate": 0.1}}}}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    studies = load_studies(path)
    with pytest.raises(MedgenInputError, match="study 'demo': .* does not exist"):
        summarise_studies(studies, tmp_path / "summary.tsv")
    run = medgen_config.run_dir(studies["studies"]["demo"]["run_config"])
    tables = anomaly_tables(tmp_path)
    for path in tables.values():  # the demo evaluates 'intensity': let it score as 'copy'
        path.write_text(path.read_text().replace("copy\t", "intensity\t"))
    replicates.aggregate(tables, "anomaly", run / "replicates" / "anomaly")
    table = summarise_studies(studies, tmp_path / "summary.tsv", tmp_path / "summary.md")
    verdicts = table.set_index("baseline")["verdict"].to_dict()
    assert verdicts == {"pca": "better", "intensity": "no difference detected"}  # not coin
    row = table.set_index("baseline").loc["pca"]
    assert row["difference"] == pytest.approx(0.1) and row["n_replicates"] == 5
    assert row["claim"] == "f-AnoGAN beats PCA."
    assert row["budget"] == (  # the study's own cuts and override, said in its summary
        "full, reduced for this study (every trained method (models, ablations and trained "
        "baselines) capped at 3 epochs); over "
        f"{spec['studies']['demo']['config']}: anomaly.evaluation.false_positive_rate=0.1")
    assert "| test | auroc | fanogan" in (tmp_path / "summary.md").read_text()


@pytest.mark.workflow
def test_one_invocation_plans_every_study_per_seed_then_the_summary():
    out = run_snakemake("-n", "-s", "workflow/papers.smk", "--config", "budget=small")
    jobs = planned_jobs(out.stdout)
    assert jobs["papers_summary"] == 1
    # two seeds each: Tybalt; AnoGAN, f-AnoGAN, conv AE (x2 datasets); GGAN and D-GEX (x2)
    assert jobs["tybalt_tcga_train_model"] == 2
    assert jobs["fanogan_pneumoniamnist_train_model"] == 6
    assert jobs["anomaly_brats_train_model"] == 6
    assert jobs["ggan_gpl96_train_model"] == 4 and jobs["ggan_tcga_train_model"] == 4
    # the study's own budget: the first auto-context level only, x 2 seeds
    assert jobs["synthesis_brats_train_synthesis_level"] == 2
    for name in ("tybalt_tcga", "anomaly_brats", "synthesis_brats", "ggan_gpl96"):
        assert jobs[f"{name}_aggregate_replicates"] == 1
