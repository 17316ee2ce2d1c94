# The claims ledger: every registered claim judged from the evidence CSVs the artefacts wrote.
# Regenerating it never retrains: its inputs are result CSVs only.
CL = config["claims"]
_unknown = sorted(set(CL.get("artefacts", [])) - set(EVIDENCE))
if _unknown:
    raise ValueError(f"claims.artefacts names unknown artefact(s) {_unknown}; known: {sorted(EVIDENCE)}")


def claims_evidence():
    """The evidence of the artefacts the ledger judges (`claims.artefacts`, default: all)."""
    return [f for a in CL.get("artefacts") or sorted(EVIDENCE) for f in EVIDENCE[a]]


rule claims:
    localrule: True
    input:
        claims_evidence(),
    output:
        csv=res("claims.csv"),
        html=report(fig("claims.html"), caption="../report/claims.rst", category="0. Claims ledger"),
    params:
        confidence=CL["confidence"],
        min_n=CL["min_n"],
        tolerance=CL["ratio_tolerance"],
        margins=" ".join(f"--margin {u}={m}" for u, m in CL["margins"].items()),
        fig_dir=fig("").rstrip("/"),
        title=f"Claims ledger: configuration {NAME!r}, device {config['device']}",
    log:
        logf("claims.log"),
    shell:
        "mfbench claims-judge {input} --out {output.csv} --html {output.html} --confidence {params.confidence}"
        " --min-n {params.min_n} --ratio-tolerance {params.tolerance} {params.margins} --fig-dir {params.fig_dir}"
        " --title {params.title:q} > {log}"


ALL_TARGETS += rules.claims.output
