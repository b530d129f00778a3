"""Reports on a search study: Pareto accuracy-vs-MACs HTML, CSV/JSON tables, PNGs, exports.

Data side (plain records, no drawing): ``storage`` (open without creating), ``records``,
``pareto``, ``references``, ``table``. Drawing and output: ``figures`` (plotly), ``html``,
``png`` (kaleido), ``export``; ``build`` wires them together for ``search report``.
"""
