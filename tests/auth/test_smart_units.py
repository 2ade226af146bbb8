"""Unit tests of the SMART pieces that need no server: scopes, what each request asks for, the patient
compartment, signing keys and their errors, the client assertion, the settings' one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from medagent.config import Settings, UserError
from medagent.fhir.auth.app_launch import pkce_pair
from medagent.fhir.auth.backend_services import BackendServicesConfig, BackendServicesToken
from medagent.fhir.auth.client_auth import backend_services_config
from medagent.fhir.auth.keys import jwk_thumbprint, load_signing_key
from medagent.fhir.server.patient_compartment import outside_compartment, search_limited_to
from medagent.fhir.server.smart_access import Refusal, classify
from medagent.fhir.server.smart_scopes import parse_scopes


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# scopes ---------------------------------------------------------------------------------------------------
def test_v2_and_v1_scopes_become_grants_and_other_scopes_grant_nothing() -> None:
    grants = parse_scopes("openid fhirUser launch/patient patient/Observation.rs user/*.cruds system/Patient.read "
                          "patient/Condition.write patient/Observation.rs?category=laboratory patient/Observation.sr "
                          "patient/Observation. Patient/*.rs")
    assert [(g.context, g.resource_type, "".join(sorted(g.permissions))) for g in grants] == [
        ("patient", "Observation", "rs"), ("user", "*", "cdrsu"), ("system", "Patient", "rs"),
        ("patient", "Condition", "cdu")]
    observation = grants[0]
    assert observation.covers("r", "Observation") and observation.covers("s", "Observation")
    assert not observation.covers("c", "Observation") and not observation.covers("r", "Condition")
    assert grants[1].covers("d", "AllergyIntolerance")


# what a request asks for ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/Observation", ("s", "Observation", None)),
    ("HEAD", "/Observation", ("s", "Observation", None)),
    ("POST", "/Observation/_search", ("s", "Observation", None)),
    ("POST", "/Observation", ("c", "Observation", None)),
    ("PUT", "/Observation", ("u", "Observation", None)),
    ("DELETE", "/Observation", ("d", "Observation", None)),
    ("GET", "/Observation/o1", ("r", "Observation", "o1")),
    ("PUT", "/Observation/o1", ("u", "Observation", "o1")),
    ("PATCH", "/Observation/o1", ("u", "Observation", "o1")),
    ("DELETE", "/Observation/o1", ("d", "Observation", "o1")),
    ("GET", "/Observation/o1/_history", ("r", "Observation", "o1")),
    ("GET", "/Observation/o1/_history/2", ("r", "Observation", "o1")),
    ("GET", "/Observation/$lastn", ("s", "Observation", None)),
    ("POST", "/Observation/$validate", ("cu", "Observation", None)),
    ("GET", "/Patient/p1/Condition", ("s", "Condition", None)),
])
def test_each_route_asks_for_one_interaction(method: str, path: str, expected: tuple[str, str, str | None]) -> None:
    [operation] = classify(method, path, [], None)
    assert ("".join(operation.permissions), operation.resource_type, operation.resource_id) == expected


def test_everything_reads_and_searches_every_type_within_one_patient_or_across_all() -> None:
    one = classify("GET", "/Patient/p1/$everything", [], None)
    assert [(op.permissions, op.resource_type, op.search, op.across_patients) for op in one] == [
        (("r",), "*", None, False), (("s",), "*", (("patient", "p1"),), False)]
    every = classify("GET", "/Patient/$everything", [], None)
    assert all(op.across_patients for op in every) and len(every) == 2
    [compartment] = classify("GET", "/Patient/p1/Observation", [("code", "x")], None)
    assert compartment.search == (("patient", "p1"), ("code", "x"))


def test_bundle_entries_are_each_an_interaction_and_unknown_routes_are_refused() -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation?patient=p1"}},
        {"request": {"method": "DELETE", "url": "Condition/c1"}},
        {"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Observation"}}]}
    operations = classify("POST", "/", [], bundle)
    assert [(op.permissions, op.resource_type, op.search) for op in operations] == [
        (("s",), "Observation", (("patient", "p1"),)), (("d",), "Condition", None), (("c",), "Observation", None)]
    for method, path in (("GET", "/Observation/o1/extra/deep/path"), ("OPTIONS", "/Observation"), ("GET", "/$diffx")):
        with pytest.raises(Refusal) as refused:
            classify(method, path, [], None)
        assert refused.value.status in (403, 405)
    with pytest.raises(Refusal, match=r"Bundle.entry\[0\].request.url is missing"):
        classify("POST", "/", [], {"resourceType": "Bundle", "entry": [{"request": {"method": "GET"}}]})


# the patient compartment ------------------------------------------------------------------------------------
def test_a_resource_is_the_patients_only_when_it_refers_to_them_and_to_no_other_patient() -> None:
    own = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/A"}}
    assert outside_compartment(own, "A") is None
    assert outside_compartment({**own, "subject": {"reference": "http://ehr.example/fhir/Patient/A/_history/3"}}, "A") is None
    assert "Patient/B" in (outside_compartment({**own, "subject": {"reference": "Patient/B"}}, "A") or "")
    assert "does not refer" in (outside_compartment({"resourceType": "Observation", "id": "o2"}, "A") or "")
    two = {**own, "performer": [{"reference": "Patient/B"}]}  # a reference anywhere counts, nested too
    assert "Patient/B" in (outside_compartment(two, "A") or "")
    assert outside_compartment({"resourceType": "Patient", "id": "A"}, "A") is None
    assert outside_compartment({"resourceType": "Patient", "id": "B"}, "A") is not None
    assert outside_compartment({"resourceType": "Practitioner", "id": "dr"}, "A") is None  # shared, no patient


def test_a_search_is_limited_only_when_it_names_the_patient_alone() -> None:
    assert search_limited_to("Observation", [("patient", "A"), ("code", "x")], "A")
    assert search_limited_to("Observation", [("subject", "Patient/A")], "A")
    assert search_limited_to("Observation", [("patient:Patient", "http://ehr/fhir/Patient/A")], "A")
    assert search_limited_to("Patient", [("_id", "A")], "A")
    assert not search_limited_to("Observation", [("patient", "A,B")], "A")
    assert not search_limited_to("Observation", [("patient", "B")], "A")
    assert not search_limited_to("Observation", [("code", "x")], "A")
    assert not search_limited_to("Patient", [("name", "Smith")], "A")
    assert not search_limited_to("Observation", [("subject", "Group/A")], "A")


# signing keys -----------------------------------------------------------------------------------------------
def test_rfc7638_thumbprint_example() -> None:
    """The kid a key gets by default: RFC 7638 section 3.1's own example and its published thumbprint."""
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
        "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
        "kEgU8awapJzKnqDKgw")}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rsa_pem_and_ec_jwk_keys_load_with_their_algorithms(tmp_path: Path) -> None:
    rsa_file, ec_file = tmp_path / "rsa.pem", tmp_path / "ec.json"
    rsa_file.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    ec_file.write_text(json.dumps({**json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()))),
                                   "kid": "my-ec-key"}))
    rsa_key, ec_key = load_signing_key(rsa_file), load_signing_key(ec_file)
    assert (rsa_key.algorithm, ec_key.algorithm, ec_key.kid) == ("RS384", "ES384", "my-ec-key")
    assert rsa_key.kid == jwk_thumbprint(rsa_key.public_jwk())
    public = rsa_key.public_jwks()["keys"][0]
    assert "d" not in public and public["alg"] == "RS384"  # the JWKS to register holds no private part


@pytest.mark.parametrize(("content", "message"), [
    (None, "No such file"),
    (b"not a key", "not an unencrypted PEM private key"),
    (b'{"kty": "RSA", "n": "abc"', "not valid JSON"),
    ("public-jwk", "no 'd' member: this is a public key"),
    ("rsa-1024", "RSA key of 1024 bits; at least 2048"),
    ("ec-p256", "EC key on secp256r1; ES384 needs P-384"),
    ("two-private", "a JWKS must hold exactly one private key, it holds 2"),
])
def test_bad_key_files_are_one_line_errors_naming_the_file(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "key"
    rsa_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if content == "public-jwk":
        content = RSAAlgorithm.to_jwk(rsa_2048.public_key()).encode()
    elif content == "rsa-1024":
        content = pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    elif content == "ec-p256":
        content = pem(ec.generate_private_key(ec.SECP256R1()))
    elif content == "two-private":
        content = json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(rsa_2048)),
                                       json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1())))]}).encode()
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(UserError) as error:
        load_signing_key(path)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_the_client_assertion_is_signed_single_use_and_expires_within_five_minutes(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "k.pem").write_bytes(pem(key))
    source = BackendServicesToken(BackendServicesConfig(client_id="svc", key_file=tmp_path / "k.pem",
                                                        fhir_url="https://ehr.example/fhir"))
    first, second = (source.client_assertion("https://ehr.example/token") for _ in range(2))
    claims = jwt.decode(first, key.public_key(), algorithms=["RS384"], audience="https://ehr.example/token")
    assert jwt.get_unverified_header(first)["alg"] == "RS384" and jwt.get_unverified_header(first)["kid"] == source.key.kid
    assert claims["iss"] == claims["sub"] == "svc"
    assert 0 < claims["exp"] - time.time() <= 300
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier


# settings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"fhir_client_id": "svc"}, "MEDAGENT_FHIR_CLIENT_ID is set but MEDAGENT_FHIR_KEY_FILE is not"),
    ({"fhir_key_file": "k.pem"}, "MEDAGENT_FHIR_KEY_FILE is set but MEDAGENT_FHIR_CLIENT_ID is not"),
    ({"fhir_client_id": "svc", "fhir_key_file": "k.pem", "fhir_token": "static-token-1234567"}, "not both"),
])
def test_half_a_backend_configuration_is_a_one_line_error(fields: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        backend_services_config(Settings(fhir_url="https://ehr.example/fhir", **fields))  # type: ignore[arg-type]
    assert backend_services_config(Settings(fhir_url="https://ehr.example/fhir")) is None


def test_server_and_app_settings_name_what_is_missing_or_malformed() -> None:
    from medagent.fhir.server.serve import access_token_policy
    from medagent.serve.smart_launch import smart_app_config

    with pytest.raises(UserError, match="need --smart-issuer"):
        access_token_policy(Settings(fhir_server_audience="http://127.0.0.1:8321"))  # type: ignore[call-arg]
    with pytest.raises(UserError, match="--smart-issuer must be an http"):
        access_token_policy(Settings(fhir_server_issuer="auth.example.org"))  # type: ignore[call-arg]
    policy = access_token_policy(Settings(fhir_server_issuer="https://auth.example.org", port=9000))  # type: ignore[call-arg]
    assert policy is not None and policy.audience == "http://127.0.0.1:9000"  # default: the server's own URL
    assert access_token_policy(Settings()) is None  # off by default
    with pytest.raises(UserError, match="need --smart-client-id"):
        smart_app_config(Settings(smart_scopes="launch patient/*.rs"), "https://ehr.example/fhir")  # type: ignore[call-arg]
    with pytest.raises(UserError, match="is not an http"):
        smart_app_config(Settings(smart_client_id="app", smart_issuers="ehr.example/fhir"),  # type: ignore[call-arg]
                         "https://ehr.example/fhir")
    app = smart_app_config(Settings(smart_client_id="app"), "https://ehr.example/fhir/")  # type: ignore[call-arg]
    assert app is not None and app.issuers == ["https://ehr.example/fhir"]
