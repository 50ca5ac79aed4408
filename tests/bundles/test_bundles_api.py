import bundles


def test_public_api_is_pinned() -> None:
    assert sorted(bundles.__all__) == sorted(
        [
            "ALGORITHMS", "ALWAYS_GRANTED", "DEFAULT_COMPRESSION_LEVEL", "DEFAULT_ENTRY_CANDIDATES", "DEFAULT_IGNORES",
            "DEFAULT_LIMITS", "DEFAULT_MAX_COMPRESSED_BYTES", "DEFAULT_MAX_FILES", "DEFAULT_MAX_HEADER_BYTES",
            "DEFAULT_MAX_MANIFEST_BYTES", "DEFAULT_MAX_MEMBER_BYTES", "DEFAULT_MAX_NAME_BYTES",
            "DEFAULT_MAX_SIGNATURE_BYTES", "DEFAULT_MAX_UNPACKED_BYTES", "DEFAULT_MAX_WARNED_HASHES",
            "DEFAULT_MAX_WINDOW_BYTES", "DEFAULT_SIGNATURE_ALGORITHM", "HTTP_METHODS", "IGNORE_FILE",
            "KNOWN_CAPABILITIES",
            "MANIFEST_NAME", "MANIFEST_SCHEMA_NAME", "ArchiveError", "ArchiveLimits", "BundleContents", "BundleError",
            "ContentHashError", "Endpoint", "EntryError", "EventSubscription",
            "ExtractedFile", "FetchedBundle", "IntegrityError",
            "Manifest", "ManifestError", "MemberInfo", "MemberVisitor", "ObjectExists", "ObjectNotFound",
            "ObjectTooLarge", "SignatureError", "SignaturePolicy", "SignatureStatus", "StoreError", "TrustBundle",
            "TrustBundleError", "UiHooks", "UiSpec", "check_component", "content_hash", "decode_signature",
            "extract_bundle", "fetch_bundle", "generate_private_key", "key_fingerprint", "manifest_schema",
            "manifest_schema_text", "normalize_member_name",
            "pack_directory", "parse_content_hash", "parse_manifest", "publish_bundle", "read_bundle",
            "read_member", "resolve_entry", "scan_archive", "sign_bundle", "verify_content_hash",
        ]
    )
    for name in bundles.__all__:
        assert hasattr(bundles, name), name


def test_error_codes_are_distinct_and_stable() -> None:
    errors = [getattr(bundles, n) for n in bundles.__all__ if n.endswith("Error") or n.startswith("Object")]
    codes = {e.__name__: e.code for e in errors}
    assert codes["ManifestError"] == "invalid_manifest"
    assert codes["ArchiveError"] == "invalid_archive"
    assert codes["EntryError"] == "invalid_entry"
    assert codes["IntegrityError"] == "hash_mismatch"
    assert codes["SignatureError"] == "signature_invalid"
    assert codes["ContentHashError"] == "invalid_content_hash"
    assert codes["TrustBundleError"] == "invalid_trust_bundle"
    assert len(set(codes.values())) == len(codes)
    assert all(issubclass(e, bundles.BundleError) for e in errors)
