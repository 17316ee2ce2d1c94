# The claims ledger: every registered claim judged from the evidence CSVs the artefacts wrote.
# Regenerating it never retrains: its inputs are result CSVs only.
_unknown = sorted(set(CL.get("artefacts", [])) - set(EVIDENCE))
if _unknown:
    raise ValueError(f"claims.artefacts names unknown artefact(s) {_unknown}; known: {sorted(EVIDENCE)}")


rule claims:
    input:
        claims_evidence(),
    output:
        csv=res("claims.csv"),
        html=report(fig("claims.html"), caption="../report/claims.rst", category="0. Claims ledger"),
    log:
        logf("claims.log"),
    localrule: True
    conda:
        ENV
    params:
        confidence=CL["confidence"],
        min_n=CL["min_n"],
        tolerance=CL["ratio_tolerance"],
        margins=" ".join(f"--margin {u}={m}" for u, m in CL["margins"].items()),
        fig_dir=lambda wc, output: os.path.dirname(output.html),
        title=f"Claims ledger. {config['_report']['provenance']}",
    shell:
        "mfbench claims-judge {input} --out {output.csv} --html {output.html} --confidence {params.confidence}"
        " --min-n {params.min_n} --ratio-tolerance {params.tolerance} {params.margins} --fig-dir {params.fig_dir}"
        " --title {params.title:q} 2>&1 | tee {log}"


ALL_TARGETS += rules.claims.output
