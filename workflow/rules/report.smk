# The report renders every result table (an HTML page beside its figure) instead of only
# offering the CSV for download. Rules files register their tables in TABLES; one job
# renders them all (each `mfbench` process pays the package's start-up once).


rule report_tables:
    input:
        list(TABLES),
    output:
        [report(table_html(csv), caption="../report/table.rst", category=cat) for csv, cat in TABLES.items()],
    log:
        logf("report_tables.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench table-html {input} --out {output} 2>&1 | tee {log}"


ALL_TARGETS += rules.report_tables.output
