"""moto costs that real AWS does not have, removed without changing what moto answers.

**TransactWriteItems rollback.**
moto keeps a deep copy of every table a transaction names (once per action) so it can roll back a failed one. That
costs time in proportion to the table's size, so ingesting orders gets slower with every order already stored:
10,000 order changes become quadratic. Here the table copy is skipped and the transaction's own items are copied
instead (a handful per transaction) and put back if moto cancels the transaction. moto's own condition checks,
updates and error reporting run unchanged; tests/integration/test_moto_speedups.py proves a cancelled transaction
still changes nothing.

**SendMessage on a deep queue.** moto's SQS reads ``queue.attributes`` to learn one FIFO setting for every message
sent, and that property counts the queue's visible, delayed and in-flight messages by walking all of them (twice
reading the clock per message). Sending to a queue that holds n messages costs O(n): a benchmark that enqueues
10,000 recompute requests nobody consumes becomes quadratic (30 minutes instead of seconds). While a send runs on
this thread, ``attributes`` returns only the FIFO settings the send path reads; GetQueueAttributes still counts.

**ReceiveMessage and DeleteMessage on a deep queue.** For every message it hands out, moto's ReceiveMessage checks the
retention period through ``get_queue_attributes``, which builds ``queue.attributes`` three times, each counting every
message of the queue (reading the clock twice per message): receiving n messages from a queue of n costs O(n^2)
clock reads. The speed-up reads ``queue.message_retention_period`` itself (the value ``attributes`` holds).
``Queue.messages`` (the visible, undelayed messages each receive scans) reads the clock once per scan instead of twice
per message, and DeleteMessage finds its message by the handle (every handle a receive gives out is noted, weakly,
with its message; the message's place in the queue is then found by identity at C speed) or else in one pass that
stops there, instead of testing every message twice against every receipt handle it ever had (moto's handles are 185
random letters: one message has a given handle).
While a receive runs on this thread, ``Queue.messages`` is walked lazily (the receive stops after the messages it
hands out; truth and length still count), a standard queue's pending message groups (which moto rebuilds from
every in-flight message, and reads only for a FIFO queue) are not built, and a receipt handle is drawn with one
``choices`` call of moto's own generator instead of 185 ``choice`` calls (185 lowercase letters either way). A replay of
12,000 SKUs drains tens of thousands of messages through queues that hold thousands in flight (issue 12).

**DynamoDB item answers.** moto serializes every answer by walking botocore's output shape, and for each attribute
value of an item it asks a generic attribute picker for each of the ten members of ``AttributeValue`` under several
aliases: an UpdateItem with ``ReturnValues=ALL_NEW`` on a SKU record spent most of its time there. An attribute value
that is a one-key dict of ``S``/``N`` (a string), ``BOOL``/``NULL`` (a bool), ``SS``/``NS`` (strings), or ``M``/``L``
of such values is written as the walk would write it; anything else (``B``, ``BS``, an unexpected type) still takes
moto's walk. tests/integration/test_replay_scale_moto_speedups.py compares both on every kind.

**Parsing the same expressions again.** Every UpdateItem makes moto tokenise and parse its UpdateExpression twice
(once to check the request, once to apply it), deep-copy the tree it parsed (its validator rewrites the copy in
place), and lex the ConditionExpression character by character with a dozen regular expressions; a handler sends the
same few expressions with new values thousands of times. The speed-up keeps each parsed update tree (and a pickled
copy of it) and each condition's lexed tokens per expression text: the validator gets a fresh copy of the tree made
from the pickle, equal node for node to the deep copy and a sixth of its cost, and the condition parser gets the
tokens it would have lexed (immutable tuples, in a fresh deque). Everything after, names and values substituted,
conditions evaluated, updates applied, errors raised, is moto's own; an expression that fails to parse is not kept,
so it fails again the same way. A replay writes SKU records with a few dozen distinct expressions, so the cache
(capped at ``_EXPRESSIONS_KEPT`` each) never evicts in practice.

**Counting an update's clauses.** moto's ActionCountValidator visits every node of an update expression's tree
and, at each, walks the node's whole subtree three times to count its ADD, REMOVE and SET clauses: quadratic in the
expression's length, and most of an UpdateItem's time for a SKU record's ten-assignment SET (a simulated week of
1,000 SKUs, issue 15). The speed-up counts each node's clauses once, from its children's counts, in the same
depth-first order, and raises moto's own TooManyClauses at the same node for the same clause: the answer, error
included, is moto's.

**Listing a response class's methods.** For every request moto lists the methods of the service's response
class (``inspect.getmembers`` over the class and its bases, about a millisecond) to learn whether the action is one
of them; a class's methods do not change while the process runs, so each class is listed once.

**Sorting a table for every query.** moto answers every Query (on the table or an index) by sorting all of the
table's items, and an index query sorts its matches again, with a key of moto's attribute objects: each comparison
converts both sides again (a number is parsed into a Decimal per comparison). A sweep queries the bucket index of a
1,000-SKU table hundreds of times a simulated day, and those conversions were a fifth of a week's replay. The
speed-up converts each key attribute once per item and sorts by the converted values: the same order, since a key
attribute has one type in a table and moto orders by exactly those values. A Query on the table itself (not an index)
keeps only the items of its partition key from that sorted list: while it runs on this thread, the list is built from
that partition alone (moto's ``items`` maps each partition key to its items), so a ledger read costs its partition,
not the table (a day of 100,000 orders, issue 16).

**Parsing an event's input paths.** For every event EventBridge delivers to a target, moto parses the same ten
JSONPath expressions (``$.detail``, ``$.source``...) into fresh parsers, building jsonpath_ng's parse tables each
time: a twentieth of a week's replay. Parsed paths are kept per text (jsonpath_ng's ``find`` does not change them),
through the module attribute moto imports at each call.

**Finding the service of a request.** moto's server lists its own package folder (a directory read and ~200
``isdir`` calls) for every request, to learn whether the host names a moto module; the folder does not change while
the process runs, so it is listed once.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import pickle
import string
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

from jsonpath_ng import ext as jsonpath_ext  # moto's EventBridge parses input paths with it
from moto import backends as moto_backends
from moto.core import responses as moto_responses
from moto.core.serialize import BaseJSONSerializer
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb import comparisons as dynamodb_comparisons
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.exceptions import TooManyClauses
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing import ast_nodes as dynamodb_ast
from moto.dynamodb.parsing import expressions as dynamodb_expressions
from moto.dynamodb.parsing import validators as dynamodb_validators
from moto.moto_api._internal import mock_random
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue, SQSBackend

_state = threading.local()
_by_handle: weakref.WeakValueDictionary[str, Message] = weakref.WeakValueDictionary()  # receipt handle -> message
_installed = False
_lock = threading.Lock()


class _CopyModule:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a table is not copied during a transaction
    of this thread (its items are, by ``_snapshot``); everything else is copied as before."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table) and getattr(_state, "in_transaction", False):
            return value
        return copy.deepcopy(value, memo)


Saved = list[tuple[Table, DynamoType, DynamoType | None, Any]]


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Saved:
    saved: Saved = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName"))
            key = op.get("Item") if op_type == "Put" else op.get("Key")
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue  # moto itself rejects it; nothing of it is applied
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in key:
                    continue
                range_value = DynamoType(key[table.range_key_attr])
            saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
    return saved


def _restore(saved: Saved) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        if item is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item


def _fifo_attributes(queue: Queue) -> dict[str, Any]:
    """What ``Queue.attributes`` holds of the FIFO settings (the only part moto's send path reads), same values."""
    if not queue.fifo_queue:
        return {}
    result = {}
    for name in Queue.FIFO_ATTRIBUTES:
        value = getattr(queue, camelcase_to_underscores(name))
        result[name] = str(value).lower() if isinstance(value, bool) else value
    return result


def _sending(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_state, "sending", False)  # a batch send calls the single send: restore, do not clear
        _state.sending = True
        try:
            return method(*args, **kwargs)
        finally:
            _state.sending = outer

    return wrapper


def _install_sqs() -> None:
    counted_attributes = Queue.attributes

    def attributes(self: Queue) -> dict[str, Any]:
        if getattr(_state, "sending", False):
            return _fifo_attributes(self)
        return counted_attributes.fget(self)  # type: ignore[attr-defined]

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = _sending(SQSBackend.send_message)  # type: ignore[method-assign]
    SQSBackend.send_message_batch = _sending(SQSBackend.send_message_batch)  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]
    received = Message.mark_received

    def mark_received(self: Message, visibility_timeout: int | None = None) -> None:
        received(self, visibility_timeout)
        _by_handle[self.receipt_handle] = self  # type: ignore[index]

    Message.mark_received = mark_received  # type: ignore[method-assign]
    SQSBackend.receive_message = _receiving(SQSBackend.receive_message)  # type: ignore[method-assign]
    sqs_models.generate_receipt_handle = _receipt_handle
    pending_groups = Queue.pending_message_groups

    def pending_message_groups(self: Queue) -> set[str]:
        if getattr(_state, "receiving", False) and not self.fifo_queue:
            return set()  # a receive reads them for a FIFO queue only
        return pending_groups.fget(self)  # type: ignore[attr-defined,no-any-return]

    Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[assignment,method-assign]
    Queue.messages = property(_deliverable)  # type: ignore[assignment,method-assign]
    Queue.delete_message = _delete_message  # type: ignore[method-assign]


def _retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's retention check, with the period read from the queue rather than from its counted attributes."""
    retention_period = self.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    if retention_period is None:  # get_queue_attributes leaves a None attribute out: moto's own KeyError
        raise KeyError("MessageRetentionPeriod")
    return bool(retention_period + message.sent_timestamp / 1000 > sqs_models.unix_time())  # type: ignore[operator]


def _sqs_now() -> float:
    """moto's SQS clock, looked up on moto.sqs.models at each call as moto's own code does, so a caller that runs SQS
    on a simulated clock by replacing ``moto.sqs.models.unix_time_millis`` (bench/latency_bench.py) moves these
    checks with it."""
    return float(sqs_models.unix_time_millis())


def _deliverable(self: Queue) -> Any:
    """``Queue.messages``: the visible messages not delayed, on one reading of the clock (lazily during a receive)."""
    if getattr(_state, "receiving", False):
        return _Deliverable(self._messages)
    now = _sqs_now()
    return [message for message in self._messages if now > message.visible_at and not now < message.delayed_until]


class _Deliverable:
    """The deliverable messages of a queue as of one reading of the clock, found as they are iterated."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages
        self._now = _sqs_now()

    def __iter__(self) -> Iterator[Message]:
        now = self._now
        return (message for message in self._messages if now > message.visible_at and not now < message.delayed_until)

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _receiving(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_state, "receiving", False)
        _state.receiving = True
        try:
            return method(*args, **kwargs)
        finally:
            _state.receiving = outer

    return wrapper


def _receipt_handle() -> str:
    # moto's: 185 lowercase letters from its own (seedable) generator, drawn one random.choice at a time
    return "".join(mock_random.choices(string.ascii_lowercase, k=185))


def _delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``: the same answers, one pass that stops at the message."""
    if receipt_handle in self.deleted_messages:
        return  # already deleted: moto accepts it again
    messages = self._messages
    index = None
    noted = _by_handle.get(receipt_handle)
    if noted is not None:
        with contextlib.suppress(ValueError):  # not in this queue (moved to its dead-letter queue): scan
            index = messages.index(noted)
    if index is None:
        index = next(
            (
                position
                for position, message in enumerate(messages)
                if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles
            ),
            None,
        )
    if index is None:
        raise ReceiptHandleIsInvalid()
    message = messages[index]
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
    self._messages = messages[:index] + messages[index + 1 :]  # a new list, as moto assigns one


_ATTRIBUTE_VALUE_MEMBERS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def attribute_value(value: Any) -> dict[str, Any] | None:
    """An item's attribute value as moto's shape walk serializes it, or None to leave it to the walk."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return {kind: inner} if type(inner) is str else None
    if kind in ("BOOL", "NULL"):
        return {kind: inner} if type(inner) is bool else None
    if kind in ("SS", "NS"):
        if type(inner) is not list or any(type(member) is not str for member in inner):
            return None
        return {kind: list(inner)}
    if kind == "M" and type(inner) is dict:
        members: dict[str, Any] = {}
        for name, member in inner.items():
            serialized = attribute_value(member)
            if serialized is None:
                return None
            members[name] = serialized
        return {"M": members}
    if kind == "L" and type(inner) is list:
        elements = []
        for member in inner:
            serialized = attribute_value(member)
            if serialized is None:
                return None
            elements.append(serialized)
        return {"L": elements}
    return None  # B, BS: moto's walk (its base64 handling stays its own)


def _install_serializer() -> None:
    walk = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _ATTRIBUTE_VALUE_MEMBERS.issuperset(shape.members):
            direct = attribute_value(value)
            if direct is not None:
                self._default_serialize(serialized, direct, shape, key)
                return
        walk(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


_EXPRESSIONS_KEPT = 4096
# Update expression text -> (its parsed tree, that tree pickled); id(tree) -> the pickle, for the validator's copy.
_update_trees: dict[str, tuple[Any, bytes]] = {}
_tree_pickles: dict[int, tuple[Any, bytes]] = {}
_condition_tokens: dict[str, tuple[Any, ...]] = {}


def parse_update_expression(expression: str) -> Any:
    """moto's own parse of an update expression, past the cache (for tests that compare the kept tree with it)."""
    return _moto_make(dynamodb_expressions.UpdateExpressionParser, expression)


_moto_make: Any = dynamodb_expressions.UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]


def _install_expression_caches() -> None:
    parser = dynamodb_expressions.UpdateExpressionParser
    make = _moto_make

    def cached_make(cls: type, expression_str: str) -> Any:
        kept = _update_trees.get(expression_str)
        if kept is not None:
            return kept[0]
        tree = make(cls, expression_str)  # raises for a bad expression: nothing kept
        if len(_update_trees) < _EXPRESSIONS_KEPT:
            kept = (tree, pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL))
            _update_trees[expression_str] = kept
            _tree_pickles[id(tree)] = kept
        return tree

    def copy_tree(value: Any, memo: dict[int, Any] | None = None) -> Any:
        kept = _tree_pickles.get(id(value))
        if kept is not None and kept[0] is value:
            return pickle.loads(kept[1])  # our own pickle of moto's tree, made in this process
        return copy.deepcopy(value, memo)

    condition_parser = dynamodb_comparisons.ConditionExpressionParser
    lex = condition_parser._lex_condition_expression

    def cached_lex(self: Any) -> Any:
        expression = self.condition_expression
        tokens = _condition_tokens.get(expression)
        if tokens is None:
            tokens = tuple(lex(self))
            if len(_condition_tokens) < _EXPRESSIONS_KEPT:
                _condition_tokens[expression] = tokens
        return deque(tokens)

    parser.make = classmethod(cached_make)  # type: ignore[method-assign,assignment]
    dynamodb_validators.deepcopy = copy_tree  # type: ignore[attr-defined]
    condition_parser._lex_condition_expression = cached_lex  # type: ignore[method-assign]


_COUNTED_CLAUSES = (
    ("ADD", dynamodb_ast.UpdateExpressionAddClause),
    ("REMOVE", dynamodb_ast.UpdateExpressionRemoveClause),
    ("SET", dynamodb_ast.UpdateExpressionSetClause),
)
_WALKED_INTO = (dynamodb_ast.Expression, dynamodb_ast.UpdateExpressionFunction)


def _clause_counts(node: Any) -> tuple[int, int, int]:
    """What ``node.find_clauses([kind])`` would find for ADD, REMOVE and SET, from the children's own counts;
    moto's ``verify_action_counts`` applied on the way back up (children first, as its traverser does)."""
    counts = [0, 0, 0]
    for child in node.children or ():
        below = _clause_counts(child) if isinstance(child, dynamodb_ast.Node) else (0, 0, 0)
        walked = isinstance(child, _WALKED_INTO)
        for position, (_name, kind) in enumerate(_COUNTED_CLAUSES):
            if type(child) is kind:
                counts[position] += 1
            elif walked:
                counts[position] += below[position]
    if isinstance(node, dynamodb_ast.UpdateExpression):
        for position, (name, _kind) in enumerate(_COUNTED_CLAUSES):
            if counts[position] > 1:
                raise TooManyClauses(name)
    return counts[0], counts[1], counts[2]


def _install_action_counts() -> None:
    def traverse(self: Any, node: Any) -> Any:
        if isinstance(node, dynamodb_ast.Node):
            _clause_counts(node)
        return node

    dynamodb_validators.ActionCountValidator.traverse = traverse  # type: ignore[method-assign]


def _install_traverser() -> None:
    """moto's DepthFirstTraverser, with each processor's node kinds and processing map built once per processor
    instead of at every node (moto rebuilds the map, a dict of bound methods, twice per node visited)."""
    traverser = dynamodb_ast.DepthFirstTraverser

    def processing(self: Any) -> tuple[tuple[type, ...], dict[type, Any]]:
        kept = self.__dict__.get("_stocksync_processing")
        if kept is None:
            kept = (tuple(self.nodes_to_be_processed()), dict(self._processing_map()))
            self.__dict__["_stocksync_processing"] = kept
        return kept  # type: ignore[no-any-return]

    def process(self: Any, node: Any) -> Any:
        for class_key, processor in processing(self)[1].items():
            if isinstance(node, class_key):
                return processor(node)
        return None

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        if isinstance(node, dynamodb_ast.Node):
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            if isinstance(node, processing(self)[0]):
                node = self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    traverser.process = process  # type: ignore[method-assign]
    traverser.traverse_node_recursively = traverse_node_recursively  # type: ignore[method-assign]


def _install_method_listing() -> None:
    listed: dict[type, list[str]] = {}
    list_methods = moto_responses.method_names_from_class

    def method_names_from_class(clazz: type) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = list_methods(clazz)
        return list(names)  # a copy, as moto's own call returns a new list each time

    moto_responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]


def _install_sort_keys() -> None:
    original_query = Table.query

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes index_name as the eighth argument (after six positional ones), or by name.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _state.partition = hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _state.partition = None

    def all_items(self: Table) -> list[Any]:
        partition, _state.partition = getattr(_state, "partition", None), None
        if partition is not None:
            # The table query's own filter (item.hash_key == hash_key) then keeps all of them, in the same order.
            hash_set = self.items.get(partition)
            partitions = [] if hash_set is None else [hash_set]
        else:
            partitions = list(self.items.values())
        items: list[Any] = []
        for hash_set in partitions:
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return sorted(
            items,
            key=lambda item: (
                (item.hash_key.cast_value, item.range_key.cast_value) if item.range_key else item.hash_key.cast_value
            ),
        )

    def sorted_items(
        self: Table, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
    ) -> Any:
        attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in attrs))
        return items

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.sorted_items = sorted_items  # type: ignore[method-assign]


def _install_event_path_cache() -> None:
    parse = jsonpath_ext.parse
    jsonpath_ext.parse = functools.lru_cache(maxsize=_EXPRESSIONS_KEPT)(parse)  # type: ignore[assignment]


def _install_module_listing() -> None:
    modules = tuple(moto_backends.list_of_moto_modules())

    def list_of_moto_modules() -> Iterator[str]:
        return iter(modules)

    moto_backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]


def install() -> None:
    """Patch moto's DynamoDB and SQS backends in this process (idempotent). moto server threads share them."""
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed:
            return
        original = DynamoDBBackend.transact_write_items

        def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            saved = _snapshot(self, transact_items)
            _state.in_transaction = True
            try:
                original(self, transact_items)
            except Exception:
                _restore(saved)
                raise
            finally:
                _state.in_transaction = False

        dynamodb_models.copy = _CopyModule()  # type: ignore[assignment]
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        _install_sqs()
        _install_serializer()
        _install_expression_caches()
        _install_action_counts()
        _install_traverser()
        _install_module_listing()
        _install_method_listing()
        _install_sort_keys()
        _install_event_path_cache()
        _installed = True
