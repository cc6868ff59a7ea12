"""The Mermaid flowchart of a graph."""

from __future__ import annotations

from counterpoint.graph import Graph, analyse, to_mermaid


def test_mermaid_nodes_edges_and_safe_names() -> None:
    g = Graph(["fetch-data", "parse", "report.v2"], [[], [0], [0, 1]])
    assert to_mermaid(g) == (
        "flowchart TD\n"
        '    s0_fetch_data["fetch-data"]\n'
        '    s1_parse["parse"]\n'
        '    s2_report_v2["report.v2"]\n'
        "    s0_fetch_data --> s1_parse\n"
        "    s0_fetch_data --> s2_report_v2\n"
        "    s1_parse --> s2_report_v2\n"
    )


def test_mermaid_labels_quotes_and_critical_path() -> None:
    g = Graph(["a", "b", "c"], [[], [0], [0]], [1.0, 5.0, 1.0])
    stats = analyse(g)
    text = to_mermaid(g, labels={"a": 'say "hi"', "c": "noop"}, critical=stats.critical_steps)
    lines = text.splitlines()
    assert lines == [
        "flowchart TD",
        '    s0_a["a<br/><i>say #quot;hi#quot;</i>"]',
        '    s1_b["b"]',
        '    s2_c["c<br/><i>noop</i>"]',
        "    s0_a --> s1_b",
        "    s0_a --> s2_c",
        "    classDef critical stroke:#d33,stroke-width:3px",
        "    class s0_a,s1_b critical",
    ]
    assert text.endswith("\n")


def test_mermaid_names_stay_unique_when_ids_sanitise_alike() -> None:
    g = Graph(["a-b", "a_b"], [[], [0]])
    text = to_mermaid(g)
    assert '    s0_a_b["a-b"]' in text
    assert '    s1_a_b["a_b"]' in text
    assert "    s0_a_b --> s1_a_b" in text


def test_mermaid_empty_graph() -> None:
    assert to_mermaid(Graph([], [])) == "flowchart TD\n"
