"""The compiled scan's array red-black tree (engine._ksm_fast: rb_link, rb_erase, rb_replace,
whose rebalancing writes each mirror case once, parameterized by side) checked directly:
the red-black properties on the arrays themselves, the textbook shapes on both sides by hand,
and the same shape and colours as engine.rbtree's tree after every step of random sequences."""
import numpy as np
from hypothesis import given, settings, strategies as st

from engine import _ksm_fast as F
from engine.rbtree import RBTree, RbNode

ROWS = 256
Node = RbNode


class ArrayTree:
    """The array tree with a key a row, as the stable tree's walk uses it (distinct keys)."""

    def __init__(self):
        self.N = np.zeros((ROWS, F.N_COLS), np.int64)
        self.C = np.zeros(F.C_COLS, np.int64)
        self.C[F.C_ROOT] = -1
        self.key = {}                   # row -> key
        self.free = list(range(ROWS - 1, -1, -1))

    def leaf(self, key):
        """(parent, left) where a new node for ``key`` is linked: the walk of _walk."""
        parent, left, n = -1, False, self.C[F.C_ROOT]
        while n != -1:
            parent, left = n, key < self.key[n]
            n = self.N[n, F.N_LEFT] if left else self.N[n, F.N_RIGHT]
        return int(parent), left

    def insert(self, key):
        x = self.free.pop()
        parent, left = self.leaf(key)
        self.key[x] = key
        F.rb_link(self.N, self.C, x, parent, left)
        return x

    def erase(self, x):
        F.rb_erase(self.N, self.C, x)
        del self.key[x]
        self.free.append(x)

    def replace(self, x):
        y = self.free.pop()
        F.rb_replace(self.N, self.C, x, y)
        self.key[y] = self.key.pop(x)
        self.free.append(x)
        return y

    def shape(self, n=None, top=True):
        if top:
            n = self.C[F.C_ROOT]
        if n == -1:
            return None
        return (self.key[n], "R" if self.N[n, F.N_RED] else "B",
                self.shape(self.N[n, F.N_LEFT], False), self.shape(self.N[n, F.N_RIGHT], False))

    def check(self):
        """The red-black properties, read off the arrays: root black, parent links, no red
        node with a red child, one black height on every path; returns the in-order keys."""
        N = self.N
        root = self.C[F.C_ROOT]
        assert root == -1 or (N[root, F.N_RED] == 0 and N[root, F.N_PARENT] == -1), "root"
        keys = []

        def walk(n, parent):
            if n == -1:
                return 1
            assert N[n, F.N_PARENT] == parent, "parent link"
            left, right = N[n, F.N_LEFT], N[n, F.N_RIGHT]
            if N[n, F.N_RED]:
                assert left == -1 or not N[left, F.N_RED], "red-red"
                assert right == -1 or not N[right, F.N_RED], "red-red"
            lh = walk(left, n)
            keys.append(self.key[n])
            rh = walk(right, n)
            assert lh == rh, "black height"
            return lh + (0 if N[n, F.N_RED] else 1)
        walk(root, -1)
        assert len(keys) == len(self.key)
        return keys


def obj_shape(n):
    if n is None:
        return None
    return (n.key, "R" if n.rb_red else "B", obj_shape(n.rb_left), obj_shape(n.rb_right))


def build(keys):
    t = ArrayTree()
    rows = {k: t.insert(k) for k in keys}
    t.check()
    return t, rows


# ---- the textbook cases on each side, shapes worked out by hand ---------------------------------
def test_insert_cases_on_the_right():
    t, _ = build([1, 2, 3])              # parent right of gparent, outer child: rotate left
    assert t.shape() == (2, "B", (1, "R", None, None), (3, "R", None, None))
    t.insert(4)                          # red uncle: recolour, root stays black
    assert t.shape() == (2, "B", (1, "B", None, None), (3, "B", None, (4, "R", None, None)))
    t.insert(5)
    assert t.shape() == (2, "B", (1, "B", None, None),
                         (4, "B", (3, "R", None, None), (5, "R", None, None)))


def test_insert_cases_on_the_left():
    t, _ = build([5, 4, 3])              # parent left of gparent, outer child: rotate right
    assert t.shape() == (4, "B", (3, "R", None, None), (5, "R", None, None))
    t.insert(2)                          # red uncle: recolour
    assert t.shape() == (4, "B", (3, "B", (2, "R", None, None), None), (5, "B", None, None))
    t.insert(1)
    assert t.shape() == (4, "B", (2, "B", (1, "R", None, None), (3, "R", None, None)),
                         (5, "B", None, None))


def test_insert_inner_child_rotates_twice_on_each_side():
    t, _ = build([3, 1, 2])              # left-right: rotate left at 1, then right at 3
    assert t.shape() == (2, "B", (1, "R", None, None), (3, "R", None, None))
    t, _ = build([1, 3, 2])              # right-left: rotate right at 3, then left at 1
    assert t.shape() == (2, "B", (1, "R", None, None), (3, "R", None, None))


def test_erase_rebalances_on_each_side():
    t, rows = build([10, 5, 15, 12, 20])
    t.erase(rows[10])                    # two children: successor 12 moves up, keeps black
    assert t.shape() == (12, "B", (5, "B", None, None), (15, "B", None, (20, "R", None, None)))
    t.erase(rows[5])                     # black leaf on the left, red outer nephew: rotate left
    assert t.shape() == (15, "B", (12, "B", None, None), (20, "B", None, None))
    t.check()

    t, rows = build([10, 5, 15, 3])
    t.erase(rows[15])                    # black leaf on the right, red outer nephew: rotate right
    assert t.shape() == (5, "B", (3, "B", None, None), (10, "B", None, None))
    t.check()


def test_erase_a_node_with_one_child_on_each_side():
    t, rows = build([10, 5, 15, 3])
    t.erase(rows[5])                     # only a left child: it takes the place and the colour
    assert t.shape() == (10, "B", (3, "B", None, None), (15, "B", None, None))
    t, rows = build([10, 5, 15, 20])
    t.erase(rows[15])                    # only a right child
    assert t.shape() == (10, "B", (5, "B", None, None), (20, "B", None, None))
    t.check()


def test_erase_inner_nephew_and_red_sibling_on_each_side():
    t, rows = build([10, 5, 15, 12])
    t.erase(rows[5])                     # left short, inner nephew 12 red: right at 15, left at 10
    assert t.shape() == (12, "B", (10, "B", None, None), (15, "B", None, None))
    t, rows = build([10, 5, 15, 7])
    t.erase(rows[15])                    # right short, inner nephew 7 red: left at 5, right at 10
    assert t.shape() == (7, "B", (5, "B", None, None), (10, "B", None, None))

    # red sibling: 1..6 ascending leaves 2 black, 4 red with black 3 and 5, 6 red
    t, rows = build([1, 2, 3, 4, 5, 6])
    assert t.shape() == (2, "B", (1, "B", None, None),
                         (4, "R", (3, "B", None, None), (5, "B", None, (6, "R", None, None))))
    t.erase(rows[1])                     # left short, red sibling 4: rotate left at 2 first
    assert t.shape() == (4, "B", (2, "B", None, (3, "R", None, None)),
                         (5, "B", None, (6, "R", None, None)))
    t, rows = build([6, 5, 4, 3, 2, 1])
    t.erase(rows[6])                     # the mirror: right short, red sibling 3
    assert t.shape() == (3, "B", (2, "B", (1, "R", None, None), None),
                         (5, "B", (4, "R", None, None), None))


def test_replace_keeps_shape_and_colour():
    t, rows = build([2, 1, 3])
    y = t.replace(rows[2])
    assert t.C[F.C_ROOT] == y
    assert t.shape() == (2, "B", (1, "R", None, None), (3, "R", None, None))
    assert (t.N[rows[2], F.N_LEFT], t.N[rows[2], F.N_RIGHT], t.N[rows[2], F.N_PARENT]) == (-1, -1, -1)
    t.check()


# ---- random sequences: the properties, and the same tree as engine.rbtree -----------------------
# Short sequences as hypothesis draws them; and long ones from a drawn seed, growing a tree of
# up to 200 nodes first, so that erase's rebalancing climbs several levels (its inner-nephew
# rotation then moves whole subtrees).
short = st.lists(st.tuples(st.sampled_from("iiier"), st.integers(0, 999)), max_size=100)


@st.composite
def long(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    keys = rng.integers(0, 1000, draw(st.integers(50, 200))).tolist()
    ops = rng.choice(list("iieer"), draw(st.integers(100, 300))).tolist()
    return keys, list(zip(ops, rng.integers(0, 1000, len(ops)).tolist()))


@settings(max_examples=100, deadline=None)
@given(short)
def test_short_random_sequences(seq):
    random_sequence([], seq)


@settings(max_examples=25, deadline=None)
@given(long())
def test_long_random_sequences(grow_and_seq):
    random_sequence(*grow_and_seq)


def random_sequence(keys, seq):
    """Grow with ``keys``, then the steps of ``seq``: after each, the array tree's properties
    hold, its in-order keys are the live ones sorted, and it has engine.rbtree's shape."""
    t = ArrayTree()
    ref = RBTree()
    row = {}                            # key -> array row
    obj = {}                            # key -> engine.rbtree node

    def step(op, k):
        if op == "i":
            if k in row or len(row) >= ROWS - 1:
                return
            parent, left, n = None, False, ref.root
            while n is not None:
                parent, left = n, k < n.key
                n = n.rb_left if left else n.rb_right
            obj[k] = Node(k)
            ref.link(obj[k], parent, left)
            row[k] = t.insert(k)
        elif row:
            k = sorted(row)[k % len(row)]
            if op == "e":
                ref.erase(obj.pop(k))
                t.erase(row.pop(k))
            else:
                new = Node(k)
                ref.replace(obj[k], new)
                obj[k] = new
                row[k] = t.replace(row[k])

    for k in keys:
        step("i", k)
    assert t.check() == sorted(row)
    assert t.shape() == obj_shape(ref.root)
    for op, k in seq:
        step(op, k)
        assert t.check() == sorted(row)
        assert t.shape() == obj_shape(ref.root)
    ref.check()
