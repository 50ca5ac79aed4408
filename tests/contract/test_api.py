"""contract's public names, and what it never imports."""

from __future__ import annotations

import subprocess
import sys

import contract


def test_public_names_are_pinned() -> None:
    assert sorted(contract.__all__) == sorted(
        [
            "CONTENT_HASH_PREFIX",
            "CONTEXT_FIELDS",
            "DEFAULT_STREAM_PREFIX",
            "ERROR_SEPARATOR",
            "ID_PATTERN",
            "JSON_NAMES",
            "KEY_SEPARATOR",
            "LEVELS",
            "MAX_GUEST_BODY_BYTES",
            "MAX_ID_LENGTH",
            "MAX_JSON_DEPTH",
            "SAFE_ID_PATTERN",
            "STREAMS",
            "BodyTooLarge",
            "ContentHashError",
            "ContractError",
            "ErrorCode",
            "JOURNAL_POLICIES",
            "USAGE_FIELDS",
            "JournalPolicy",
            "parse_journal_policy",
            "ExecuteRequest",
            "ExecuteResult",
            "FailureKind",
            "HttpRequest",
            "InvalidBase64",
            "InvalidField",
            "InvalidStreamKey",
            "Level",
            "Limits",
            "Outcome",
            "RequestContext",
            "Stream",
            "UnknownCapabilities",
            "UserInfo",
            "decode_execute_json",
            "decode_execute_request",
            "decode_execute_result",
            "encode_execute_request",
            "encode_execute_result",
            "entry_fields",
            "entry_to_event",
            "execute_document_bytes",
            "format_content_hash",
            "format_error",
            "is_id",
            "is_safe_id",
            "is_stream_key_part",
            "load_json",
            "parse_content_hash",
            "parse_prefixed_content_hash",
            "parse_stream_key",
            "split_error",
            "stream_key",
            # signed /ext-ui URLs
            "UI_TOKEN_SEGMENT",
            "UiUrlSigner",
            "signed_ui_path",
            "split_ui_token",
        ]
    )
    assert len(set(contract.__all__)) == len(contract.__all__)
    for name in contract.__all__:
        assert hasattr(contract, name), name


def test_errors_form_one_tree_of_value_errors() -> None:
    for error in (contract.InvalidField, contract.InvalidBase64, contract.UnknownCapabilities,
                  contract.BodyTooLarge, contract.InvalidStreamKey):
        assert issubclass(error, contract.ContractError)
    assert issubclass(contract.ContractError, ValueError)
    assert issubclass(contract.ContentHashError, ValueError)
    assert contract.UnknownCapabilities.code is contract.ErrorCode.UNKNOWN_CAPABILITIES
    assert contract.BodyTooLarge.code is contract.ErrorCode.PAYLOAD_TOO_LARGE


def test_imports_no_service_package_quart_or_wasmtime() -> None:
    probe = (
        "import sys, contract; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'runner_trio', 'gateway_quart', 'extctl', 'quart', 'quart_trio', 'wasmtime'})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_content_hash_grammar_is_the_bundle_formats() -> None:
    import bundles

    assert contract.parse_content_hash is bundles.parse_content_hash
    assert contract.ContentHashError is bundles.ContentHashError
