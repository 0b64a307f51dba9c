"""A red-black tree with the Linux kernel's rebalancing (``lib/rbtree.c``), for trees whose
exact shape matters.

KSM's stable tree is ordered by page content, and a lookup has side effects on every node
it passes: stale nodes are erased and chains of dups are pruned or collapsed. The counters
therefore depend on which nodes lie on each lookup's path, that is, on the tree's shape. This
tree reproduces the kernel's shape for any sequence of operations. Insertion links the new
node at the leaf the caller's walk reached, then recolours and rotates. Erase takes the
in-order successor for a node with two children, and the successor keeps the erased node's
colour. Replace swaps a node in place, as ``rb_replace_node`` does. The operations follow
the kernel's case analysis, written here from its description.

Nodes are any objects with the attributes ``rb_left``, ``rb_right``, ``rb_parent`` and
``rb_red``; the tree only keeps the root.
"""
from __future__ import annotations


class RbNode:
    """The smallest node the tree takes: the links of a ``struct rb_node`` and a key (what a
    caller's walk compares; the tree itself never reads it)."""

    __slots__ = ("key", "rb_left", "rb_right", "rb_parent", "rb_red")

    def __init__(self, key):
        self.key = key
        self.rb_left = self.rb_right = self.rb_parent = None
        self.rb_red = False


class RBTree:
    __slots__ = ("root",)

    def __init__(self):
        self.root = None

    def __bool__(self):
        return self.root is not None

    # -- helpers ------------------------------------------------------------------------------
    def _change_child(self, old, new, parent) -> None:
        if parent is None:
            self.root = new
        elif parent.rb_left is old:
            parent.rb_left = new
        else:
            parent.rb_right = new

    def _rotate_set_parents(self, old, new, red: bool) -> None:
        """``new`` takes ``old``'s place (parent and colour); ``old`` becomes its child with ``red``."""
        parent = old.rb_parent
        new.rb_parent = parent
        new.rb_red = old.rb_red
        old.rb_parent = new
        old.rb_red = red
        self._change_child(old, new, parent)

    # -- insert ---------------------------------------------------------------------------------
    def link(self, node, parent, left: bool) -> None:
        """``rb_link_node`` + ``rb_insert_color``: attach ``node`` as the ``left``/right child
        of ``parent`` (None: as the root), then rebalance."""
        node.rb_left = node.rb_right = None
        node.rb_parent = parent
        node.rb_red = True
        if parent is None:
            self.root = node
        elif left:
            parent.rb_left = node
        else:
            parent.rb_right = node
        self._insert_color(node)

    def _insert_color(self, node) -> None:
        parent = node.rb_parent
        while True:
            if parent is None:
                node.rb_red = False
                return
            if not parent.rb_red:
                return
            gparent = parent.rb_parent
            tmp = gparent.rb_right
            if parent is not tmp:                       # parent is gparent's left child
                if tmp is not None and tmp.rb_red:      # case 1: red uncle, flip colours
                    tmp.rb_red = False
                    parent.rb_red = False
                    node = gparent
                    parent = node.rb_parent
                    node.rb_red = True
                    continue
                tmp = parent.rb_right
                if node is tmp:                         # case 2: left rotate at parent
                    tmp = node.rb_left
                    parent.rb_right = tmp
                    node.rb_left = parent
                    if tmp is not None:
                        tmp.rb_parent = parent
                        tmp.rb_red = False
                    parent.rb_parent = node
                    parent.rb_red = True
                    parent = node
                    tmp = node.rb_right
                gparent.rb_left = tmp                   # case 3: right rotate at gparent
                parent.rb_right = gparent
                if tmp is not None:
                    tmp.rb_parent = gparent
                    tmp.rb_red = False
                self._rotate_set_parents(gparent, parent, True)
                return
            else:                                       # mirror: parent is gparent's right child
                tmp = gparent.rb_left
                if tmp is not None and tmp.rb_red:
                    tmp.rb_red = False
                    parent.rb_red = False
                    node = gparent
                    parent = node.rb_parent
                    node.rb_red = True
                    continue
                tmp = parent.rb_left
                if node is tmp:
                    tmp = node.rb_right
                    parent.rb_left = tmp
                    node.rb_right = parent
                    if tmp is not None:
                        tmp.rb_parent = parent
                        tmp.rb_red = False
                    parent.rb_parent = node
                    parent.rb_red = True
                    parent = node
                    tmp = node.rb_left
                gparent.rb_right = tmp
                parent.rb_left = gparent
                if tmp is not None:
                    tmp.rb_parent = gparent
                    tmp.rb_red = False
                self._rotate_set_parents(gparent, parent, True)
                return

    # -- replace --------------------------------------------------------------------------------
    def replace(self, victim, new) -> None:
        """``rb_replace_node``: ``new`` takes ``victim``'s place, links and colour."""
        parent = victim.rb_parent
        new.rb_left, new.rb_right, new.rb_parent, new.rb_red = victim.rb_left, victim.rb_right, parent, victim.rb_red
        if victim.rb_left is not None:
            victim.rb_left.rb_parent = new
        if victim.rb_right is not None:
            victim.rb_right.rb_parent = new
        self._change_child(victim, new, parent)
        victim.rb_left = victim.rb_right = victim.rb_parent = None

    # -- erase ----------------------------------------------------------------------------------
    def erase(self, node) -> None:
        child = node.rb_right
        tmp = node.rb_left
        if tmp is None:                                 # at most one child (the right one)
            parent = node.rb_parent
            self._change_child(node, child, parent)
            if child is not None:
                child.rb_parent = parent
                child.rb_red = node.rb_red
                rebalance = None
            else:
                rebalance = parent if not node.rb_red else None
        elif child is None:                             # only a left child
            tmp.rb_parent = node.rb_parent
            tmp.rb_red = node.rb_red
            self._change_child(node, tmp, node.rb_parent)
            rebalance = None
        else:
            successor = child
            tmp = child.rb_left
            if tmp is None:                             # the successor is the right child
                parent = successor
                child2 = successor.rb_right
            else:                                       # the leftmost node of the right subtree
                while tmp is not None:
                    parent = successor
                    successor = tmp
                    tmp = tmp.rb_left
                child2 = successor.rb_right
                parent.rb_left = child2
                successor.rb_right = child
                child.rb_parent = successor
            tmp = node.rb_left
            successor.rb_left = tmp
            tmp.rb_parent = successor
            grand = node.rb_parent
            self._change_child(node, successor, grand)
            if child2 is not None:
                child2.rb_parent = parent
                child2.rb_red = False
                rebalance = None
            else:
                rebalance = parent if not successor.rb_red else None
            successor.rb_parent = grand
            successor.rb_red = node.rb_red
        node.rb_left = node.rb_right = node.rb_parent = None
        if rebalance is not None:
            self._erase_color(rebalance)

    def _erase_color(self, parent) -> None:
        node = None
        while True:
            sibling = parent.rb_right
            if node is not sibling:                     # node is the left child
                if sibling.rb_red:                      # case 1: left rotate at parent
                    tmp1 = sibling.rb_left
                    parent.rb_right = tmp1
                    sibling.rb_left = parent
                    tmp1.rb_parent = parent
                    tmp1.rb_red = False
                    self._rotate_set_parents(parent, sibling, True)
                    sibling = tmp1
                tmp1 = sibling.rb_right
                if tmp1 is None or not tmp1.rb_red:
                    tmp2 = sibling.rb_left
                    if tmp2 is None or not tmp2.rb_red:  # case 2: sibling colour flip
                        sibling.rb_red = True
                        if parent.rb_red:
                            parent.rb_red = False
                        else:
                            node = parent
                            parent = node.rb_parent
                            if parent is not None:
                                continue
                        return
                    tmp1 = tmp2.rb_right                 # case 3: right rotate at sibling
                    sibling.rb_left = tmp1
                    tmp2.rb_right = sibling
                    parent.rb_right = tmp2
                    if tmp1 is not None:
                        tmp1.rb_parent = sibling
                        tmp1.rb_red = False
                    tmp1 = sibling
                    sibling = tmp2
                tmp2 = sibling.rb_left                   # case 4: left rotate at parent, recolour
                parent.rb_right = tmp2
                sibling.rb_left = parent
                tmp1.rb_parent = sibling
                tmp1.rb_red = False
                if tmp2 is not None:
                    tmp2.rb_parent = parent
                self._rotate_set_parents(parent, sibling, False)
                return
            else:                                       # mirror: node is the right child
                sibling = parent.rb_left
                if sibling.rb_red:
                    tmp1 = sibling.rb_right
                    parent.rb_left = tmp1
                    sibling.rb_right = parent
                    tmp1.rb_parent = parent
                    tmp1.rb_red = False
                    self._rotate_set_parents(parent, sibling, True)
                    sibling = tmp1
                tmp1 = sibling.rb_left
                if tmp1 is None or not tmp1.rb_red:
                    tmp2 = sibling.rb_right
                    if tmp2 is None or not tmp2.rb_red:
                        sibling.rb_red = True
                        if parent.rb_red:
                            parent.rb_red = False
                        else:
                            node = parent
                            parent = node.rb_parent
                            if parent is not None:
                                continue
                        return
                    tmp1 = tmp2.rb_left
                    sibling.rb_right = tmp1
                    tmp2.rb_left = sibling
                    parent.rb_left = tmp2
                    if tmp1 is not None:
                        tmp1.rb_parent = sibling
                        tmp1.rb_red = False
                    tmp1 = sibling
                    sibling = tmp2
                tmp2 = sibling.rb_right
                parent.rb_left = tmp2
                sibling.rb_right = parent
                tmp1.rb_parent = sibling
                tmp1.rb_red = False
                if tmp2 is not None:
                    tmp2.rb_parent = parent
                self._rotate_set_parents(parent, sibling, False)
                return

    # -- inspection -----------------------------------------------------------------------------
    def __iter__(self):
        """In-order traversal."""
        stack, n = [], self.root
        while stack or n is not None:
            while n is not None:
                stack.append(n)
                n = n.rb_left
            n = stack.pop()
            yield n
            n = n.rb_right

    def check(self) -> int:
        """Verify the red-black properties and parent links; return the black height."""
        def walk(n, parent):
            if n is None:
                return 1
            assert n.rb_parent is parent, "parent link"
            if n.rb_red:
                assert not (n.rb_left is not None and n.rb_left.rb_red), "red-red"
                assert not (n.rb_right is not None and n.rb_right.rb_red), "red-red"
            lh, rh = walk(n.rb_left, n), walk(n.rb_right, n)
            assert lh == rh, "black height"
            return lh + (0 if n.rb_red else 1)
        assert self.root is None or not self.root.rb_red, "red root"
        return walk(self.root, None)
