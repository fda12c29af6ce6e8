"""The trace view: the span tree with durations, status marks and a waterfall column."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from span_tree._display import causal_items, short_error_type
from span_tree._ids import is_trace_id, w3c_trace_id
from span_tree._record import STATUS_FAILED, FinishedSpan, newest_versions
from span_tree.tui._format import clock, format_duration, truncate
from span_tree.tui._messages import OpenSpan
from span_tree.tui._screen import BaseScreen
from span_tree.tui._widgets import status_mark

# Traces this big start with only the first two levels open, so the first frame is quick.
EXPAND_ALL_LIMIT = 2_000
DURATION_WIDTH = 9


@dataclass(frozen=True)
class SpanNode:
    """What a tree node holds: the span and where it sits."""

    span: FinishedSpan
    depth: int


class SpanTree(Tree[SpanNode]):
    """A ``Tree`` whose labels end in a waterfall bar at a fixed column.

    The bar shows where the span sits on the trace's time axis, so the tree is also the
    timeline. Bars are drawn at render time, so they follow the widget's width.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open span"),
        Binding("space", "toggle_node", "Fold"),
        Binding("left", "collapse_or_parent", "Parent", show=False),
        Binding("right", "expand_or_child", "Child", show=False),
    ]

    def __init__(self, label: str, *, start_us: int, total_us: int, **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.trace_start = start_us
        self.trace_total = max(1, total_us)
        self.auto_expand = False

    def _bar_width(self) -> int:
        return max(10, min(50, self.size.width // 3))

    def render_label(self, node: TreeNode[SpanNode], base_style: Style, style: Style) -> Text:
        if node.data is None:
            return super().render_label(node, base_style, style)
        span = node.data.span
        prefix_icon = ""
        if node.allow_expand:
            prefix_icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
        guide = node.data.depth * self.guide_depth
        bar_width = self._bar_width()
        label_width = max(12, self.size.width - guide - bar_width - DURATION_WIDTH - 4)
        mark, mark_style = status_mark(span)
        text = Text(no_wrap=True, overflow="crop")
        text.append(prefix_icon or "  ", style=base_style)
        name = f"{mark} {span.name}"
        if span.error_type:
            name += f"  {short_error_type(span.error_type)}: {span.error_message or ''}"
        name = truncate(name, label_width)
        text.append(mark, style=mark_style)
        name_style = "bold" if span.error_type is None else "red"
        text.append(name[1:].ljust(label_width - 1), style=name_style)
        text.append(format_duration(span.duration_us).rjust(DURATION_WIDTH), style="cyan")
        text.append(" ")
        text.append_text(self._bar(span, bar_width))
        text.stylize(style)
        return text

    def _bar(self, span: FinishedSpan, width: int) -> Text:
        offset = (span.start_time - self.trace_start) * width // self.trace_total
        offset = min(max(0, offset), width - 1)
        length = max(1, (span.duration_us or 0) * width // self.trace_total)
        length = min(length, width - offset)
        _, style = status_mark(span)
        bar = Text("·" * offset, style="dim")
        bar.append("█" * length, style=style.replace("bold ", ""))
        bar.append("·" * (width - offset - length), style="dim")
        return bar

    def get_label_width(self, node: TreeNode[SpanNode]) -> int:
        # Labels are cut to the widget's width by design (no horizontal scrolling), and
        # measuring 10,000 of them on every fold would stall the UI.
        return 0

    def action_collapse_or_parent(self) -> None:
        """Left: fold an open node, else go to its parent."""
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)

    def action_expand_or_child(self) -> None:
        """Right: open a folded node, else go to its first child."""
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if not node.is_expanded:
            node.expand()
        elif node.children:
            self.move_cursor(node.children[0])


def build_tree(tree: SpanTree, spans: list[FinishedSpan]) -> int:
    """Fill ``tree`` with ``spans`` (children in causal order); return the span count."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str | None, list[FinishedSpan]] = defaultdict(list)
    for span in sorted(spans, key=lambda s: (s.start_time, s.seq)):
        parent = span.parent_id if span.parent_id in by_id else None
        children[parent].append(span)
    for parent_id, kids in children.items():
        if parent_id is not None and len(kids) > 1:
            # seq within one process, start time for children from another process
            ordered = causal_items(by_id[parent_id], kids, [])
            children[parent_id] = [kid for kid in ordered if isinstance(kid, FinishedSpan)]
    expand_all = len(spans) <= EXPAND_ALL_LIMIT
    stack: list[tuple[TreeNode[SpanNode], FinishedSpan, int]] = [
        (tree.root, span, 0) for span in reversed(children[None])
    ]
    while stack:  # iterative: a 10,000-deep chain must not hit the recursion limit
        parent_node, span, depth = stack.pop()
        kids = children.get(span.span_id, [])
        data = SpanNode(span, depth)
        if kids:
            node = parent_node.add(
                span.name, data=data, expand=expand_all or depth < 1, before=None
            )
            stack.extend((node, kid, depth + 1) for kid in reversed(kids))
        else:
            parent_node.add_leaf(span.name, data=data)
    return len(spans)


class TraceScreen(BaseScreen[None]):
    """One trace: arrows move, Enter opens the span under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, records: list[FinishedSpan], *, focus_span: str | None = None) -> None:
        super().__init__()
        self.focus_span = focus_span
        self.spans = newest_versions(records)
        self.trace_id = self.spans[0].trace_id if self.spans else ""

    def compose(self) -> ComposeResult:
        start = min((s.start_time for s in self.spans), default=0)
        end = max((s.end_time or s.start_time for s in self.spans), default=start)
        yield Static(self._header(start, end), id="trace-header")
        tree = SpanTree(
            f"trace {self.trace_id}", start_us=start, total_us=end - start, id="span-tree"
        )
        tree.show_root = False
        tree.guide_depth = 3
        build_tree(tree, self.spans)
        tree.root.expand()
        yield tree
        yield Footer(compact=True)

    def on_mount(self) -> None:
        tree = self.query_one(SpanTree)
        tree.focus()
        tree.move_cursor_to_line(0)
        if self.focus_span:
            self._move_to(tree, self.focus_span)
        self.reload()

    def reload(self) -> None:
        """The trace is fixed data: say it is shown once the tree has been drawn."""
        self.show_loaded(self.begin_load(), widget=self.query_one(SpanTree))

    def _move_to(self, tree: SpanTree, span_id: str) -> None:
        stack = list(tree.root.children)
        while stack:
            node = stack.pop()
            if node.data is not None and node.data.span.span_id == span_id:
                parent = node.parent
                while parent is not None:
                    parent.expand()
                    parent = parent.parent
                tree.move_cursor(node)
                return
            stack.extend(node.children)

    def _header(self, start: int, end: int) -> Text:
        failed = sum(1 for s in self.spans if s.status == STATUS_FAILED)
        roots = [s for s in self.spans if s.parent_id is None] or self.spans[:1]
        header = Text()
        header.append(" trace ", style="bold reverse")
        header.append(f" {self.trace_id}", style="bold")
        if is_trace_id(self.trace_id):
            header.append(f"  w3c {w3c_trace_id(self.trace_id)}", style="dim")
        header.append("\n")
        root = roots[0] if roots else None
        if root is not None:
            header.append(f" {truncate(root.name, 60)}", style="bold")
            header.append(f"  {clock(start, self.app.now())}  ")
        header.append(format_duration(end - start), style="cyan")
        header.append(f"  {len(self.spans)} spans  ")
        header.append(f"{failed} failed", style="red" if failed else "green")
        if root is not None and root.tags:
            tags = " ".join(f"{k}={v}" for k, v in sorted(root.tags.items()))
            header.append(f"  {truncate(tags, 60)}", style="dim")
        return header

    def action_open_span(self) -> None:
        """Open the span under the cursor."""
        node = self.query_one(SpanTree).cursor_node
        if node is not None and node.data is not None:
            self._open(node.data.span)

    def action_fold(self) -> None:
        """Fold or unfold the span under the cursor."""
        node = self.query_one(SpanTree).cursor_node
        if node is not None and node.allow_expand:
            node.toggle()

    def on_tree_node_selected(self, event: Tree.NodeSelected[SpanNode]) -> None:
        if event.node.data is not None:
            self._open(event.node.data.span)

    def _open(self, span: FinishedSpan) -> None:
        self.post_message(OpenSpan(span, self.spans))
