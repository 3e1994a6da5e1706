import pytest

from aiperf_hpc.core.nodelist import MAX_HOSTS, expand_nodelist


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node1", ["node1"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("node[01-03]", ["node01", "node02", "node03"]),
        ("node[08-10]", ["node08", "node09", "node10"]),
        ("node[9-11]", ["node9", "node10", "node11"]),
        ("node[1-3,7],gpu01", ["node1", "node2", "node3", "node7", "gpu01"]),
        ("n1,n[2-3],gpu[07-08]", ["n1", "n2", "n3", "gpu07", "gpu08"]),
        ("mel[0001,0003-0004]", ["mel0001", "mel0003", "mel0004"]),
        ("node[5]", ["node5"]),
        ("a.b-c_d", ["a.b-c_d"]),
    ],
)
def test_expands(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize(
    ("nodelist", "message"),
    [
        ("", "empty"),
        ("a[1,3-4]b", "nothing after the brackets"),
        ("rack[1-2]-node[1-2]", "nothing after the brackets"),
        ("node[1-3", "unbalanced '['"),
        ("node1-3]", "unbalanced ']'"),
        ("node[[1-2]]", "nested"),
        ("node[3-1]", "descending"),
        ("node[1-]", "bad range"),
        ("node[]", "bad range"),
        ("node[a-b]", "bad range"),
        ("node1,,node2", "unsupported hostlist entry ''"),
        ("node 1", "unsupported"),
        (f"node[0-{MAX_HOSTS}]", "more than"),
    ],
)
def test_refuses(nodelist: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        expand_nodelist(nodelist)


def test_refuses_a_list_that_grows_past_the_limit_entry_by_entry() -> None:
    half = MAX_HOSTS // 2 + 1
    with pytest.raises(ValueError, match="more than"):
        expand_nodelist(f"a[1-{half}],b[1-{half}]")
