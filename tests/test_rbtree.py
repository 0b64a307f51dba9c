"""The kernel-rebalancing red-black tree: properties under random operations, and shapes
checked by hand against the textbook cases."""
from hypothesis import given, settings, strategies as st

from engine.rbtree import RBTree, RbNode

N = RbNode


def insert(t, key):
    parent, left, n = None, False, t.root
    while n is not None:
        parent = n
        left = key < n.key
        n = n.rb_left if left else n.rb_right
    node = N(key)
    t.link(node, parent, left)
    return node


def shape(n):
    if n is None:
        return None
    return (n.key, "R" if n.rb_red else "B", shape(n.rb_left), shape(n.rb_right))


def test_ascending_inserts_rotate_as_the_textbook_says():
    t = RBTree()
    for k in (1, 2, 3):
        insert(t, k)
    assert shape(t.root) == (2, "B", (1, "R", None, None), (3, "R", None, None))
    insert(t, 4)                      # red uncle: recolour, root stays black
    assert shape(t.root) == (2, "B", (1, "B", None, None), (3, "B", None, (4, "R", None, None)))
    insert(t, 5)                      # left rotate at 3
    assert shape(t.root) == (2, "B", (1, "B", None, None), (4, "B", (3, "R", None, None), (5, "R", None, None)))


def test_erase_takes_the_successor_and_its_colour():
    t = RBTree()
    nodes = {k: insert(t, k) for k in (10, 5, 15, 12, 20)}
    t.erase(nodes[10])                # two children: successor 12 moves up and turns black
    assert shape(t.root) == (12, "B", (5, "B", None, None), (15, "B", None, (20, "R", None, None)))
    t.erase(nodes[5])                 # black leaf: rebalance by rotating at 12
    assert shape(t.root) == (15, "B", (12, "B", None, None), (20, "B", None, None))
    t.check()


def test_replace_keeps_shape_and_colour():
    t = RBTree()
    nodes = {k: insert(t, k) for k in (2, 1, 3)}
    new = N(2.5)
    t.replace(nodes[2], new)
    assert shape(t.root) == (2.5, "B", (1, "R", None, None), (3, "R", None, None))
    t.check()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=200))
def test_random_operations_keep_the_properties(ops):
    t = RBTree()
    live = {}
    for ins, k in ops:
        if ins and k not in live:
            live[k] = insert(t, k)
        elif not ins and k in live:
            t.erase(live.pop(k))
        t.check()
        assert [n.key for n in t] == sorted(live)
