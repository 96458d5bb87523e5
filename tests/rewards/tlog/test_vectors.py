"""Known answers for the verifiable ledger's primitives, each from a published source.

- Merkle trees (RFC 6962 / RFC 9162 hashing): the reference 8-leaf tree of
  github.com/transparency-dev/merkle, testonly/constants.go (leaf inputs, the root of
  every size 0..8), and its testdata/inclusion and testdata/consistency probes, copied
  into data/transparency_dev_merkle.json (the commit is named in the file).
- Ed25519: RFC 8032 section 7.1, TEST 1, TEST 2, TEST 3, TEST 1024 and TEST SHA(abc).
- Signed notes and verifier keys: the example of the C2SP signed-note specification
  (github.com/C2SP/C2SP, signed-note.md: vkey `example.com/foo+530d903a+…` and its note),
  and golang.org/x/mod/sumdb/note's example_test.go (the PeterNeumann signer and
  verifier keys, the note it signs, and the EnochRoot key derived from an all-zero seed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from heliod.rewards.tlog.note import checkpoint_text, key_id, signed_note, vkey
from heliod.rewards.tlog.tree import MerkleTree, consistency_proof, inclusion_proof, tree_root
from heliod.rewards.tlog.verify import (
    EMPTY_ROOT,
    ProofError,
    ed25519_verify,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_vkey,
    split_note,
    verify_consistency,
    verify_inclusion,
)

DATA = json.loads((Path(__file__).parent / "data" / "transparency_dev_merkle.json").read_text())

# testonly/constants.go: LeafInputs() and RootHashes() (index = tree size).
LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAF_HASHES = [leaf_hash(bytes.fromhex(x)) for x in LEAF_INPUTS]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_the_root_of_every_size_of_the_reference_tree() -> None:
    tree = MerkleTree(LEAF_HASHES)
    for size, root in enumerate(ROOTS):
        assert tree.root(size).hex() == root
        assert tree_root(LEAF_HASHES[:size]).hex() == root
    assert EMPTY_ROOT.hex() == ROOTS[0]


def _ok_despite_short_hashes(probe: dict[str, Any]) -> bool:
    # The library accepts equal sizes with equal roots of any length ("don't care"); we
    # refuse any root that is not 32 bytes, on purpose.
    return any(len(b64(probe[k])) != 32 for k in ("root1", "root2") if k in probe)


@pytest.mark.parametrize("probe", DATA["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probes(probe: dict[str, Any]) -> None:
    args = (
        probe["leafIdx"],
        probe["treeSize"],
        b64(probe["leafHash"]),
        [b64(p) for p in probe["proof"]],
        b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("probe", DATA["consistency"], ids=lambda p: p["file"])
def test_consistency_probes(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        b64(probe["root1"]),
        b64(probe["root2"]),
        [b64(p) for p in probe["proof"]],
    )
    if probe["wantErr"] or _ok_despite_short_hashes(probe):
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_our_proofs_are_the_published_happy_paths() -> None:
    tree = MerkleTree(LEAF_HASHES)
    happy = [p for p in DATA["inclusion"] if p["desc"] == "happy path"]
    assert len(happy) == 5
    for p in happy:
        proof = [b64(x) for x in p["proof"]]
        assert tree.inclusion(p["leafIdx"], p["treeSize"]) == proof
        assert inclusion_proof(LEAF_HASHES, p["leafIdx"], p["treeSize"]) == proof
    happy = [p for p in DATA["consistency"] if p["desc"] == "happy path"]
    assert len(happy) == 5
    for p in happy:
        proof = [b64(x) for x in p["proof"]]
        assert tree.consistency(p["size1"], p["size2"]) == proof
        assert consistency_proof(LEAF_HASHES, p["size1"], p["size2"]) == proof
        assert tree.root(p["size1"]) == b64(p["root1"])


# RFC 8032 section 7.1: (name, secret key, public key, message, signature), hex.
TEST_1024_MESSAGE = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0"
)
RFC8032 = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        TEST_1024_MESSAGE,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


@pytest.mark.parametrize(("name", "secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(name: str, secret: str, public: str, message: str, signature: str) -> None:
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(pk, msg, sig), name
    # The signing library used by the gateway gives the same bytes.
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == pk
    assert private.sign(msg) == sig
    # Any other message, key or signature fails.
    assert not ed25519_verify(pk, msg + b"x", sig)
    assert not ed25519_verify(pk, msg, sig[:-1] + bytes([sig[-1] ^ 0x01]))
    other = RFC8032[0][2] if public != RFC8032[0][2] else RFC8032[1][2]
    assert not ed25519_verify(bytes.fromhex(other), msg, sig)


def test_sha_abc_message_is_sha512_of_abc() -> None:
    assert RFC8032[4][3] == hashlib.sha512(b"abc").hexdigest()


L = 2**252 + 27742317777372353535851937790883648493


def test_non_canonical_s_and_undecodable_points_are_refused() -> None:
    _, _, public, message, signature = RFC8032[0]
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    s = int.from_bytes(sig[32:], "little")
    # S + L is the same scalar mod L: a malleated signature a lax verifier would accept.
    assert not ed25519_verify(pk, msg, sig[:32] + (s + L).to_bytes(32, "little"))
    # y = p (non-canonical encoding of y = 0) and a y with no x on the curve.
    p = 2**255 - 19
    assert not ed25519_verify(p.to_bytes(32, "little"), msg, sig)
    assert not ed25519_verify((2).to_bytes(32, "little"), msg, sig)
    assert not ed25519_verify(pk, msg, p.to_bytes(32, "little") + sig[32:])
    # x = 0 with the sign bit set is not a canonical encoding.
    assert not ed25519_verify((1 | 1 << 255).to_bytes(32, "little"), msg, sig)
    assert not ed25519_verify(pk[:31], msg, sig)
    assert not ed25519_verify(pk, msg, sig[:63])


# C2SP signed-note.md, "Verifier keys", Example.
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# golang.org/x/mod/sumdb/note, example_test.go.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
GO_ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_c2sp_example_note_verifies_with_its_vkey() -> None:
    name, public = parse_vkey(C2SP_VKEY)
    assert name == "example.com/foo"
    assert key_id(name, public).hex() == "530d903a"
    assert vkey(name, public) == C2SP_VKEY
    assert open_note(C2SP_NOTE, name, public) == "This is an example message.\n"
    with pytest.raises(ProofError):
        open_note(C2SP_NOTE.replace("example message", "example massage"), name, public)


def test_go_sumdb_note_signed_by_us_is_byte_for_byte_the_published_one() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert vkey("PeterNeumann", public) == GO_VKEY
    assert signed_note(GO_TEXT, "PeterNeumann", public, private.sign) == GO_TEXT + "\n" + GO_SIG
    name, parsed = parse_vkey(GO_VKEY)
    assert open_note(GO_TEXT + "\n" + GO_SIG, name, parsed) == GO_TEXT


def test_signatures_of_other_keys_are_ignored_but_one_of_ours_is_required() -> None:
    # The EnochRoot key of the Go example comes from an all-zero seed.
    enoch = Ed25519PrivateKey.from_private_bytes(bytes(32))
    enoch_public = enoch.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    both = GO_TEXT + "\n" + GO_SIG + GO_ENOCH_SIG
    assert signed_note(GO_TEXT, "EnochRoot", enoch_public, enoch.sign).endswith(GO_ENOCH_SIG)
    assert open_note(both, *parse_vkey(GO_VKEY)) == GO_TEXT
    assert open_note(both, "EnochRoot", enoch_public) == GO_TEXT
    assert len(split_note(both)[1]) == 2
    with pytest.raises(LookupError):
        open_note(GO_TEXT + "\n" + GO_ENOCH_SIG, *parse_vkey(GO_VKEY))
    # Same name, another key id: not ours, ignored (then: none of ours).
    with pytest.raises(LookupError):
        open_note(
            GO_TEXT + "\n" + GO_ENOCH_SIG.replace("EnochRoot", "PeterNeumann"), *parse_vkey(GO_VKEY)
        )


def test_every_mangling_of_a_vkey_is_refused() -> None:
    # As the Go library's TestNewVerifier: every proper substring and every byte + 1.
    parse_vkey(GO_VKEY)
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(ValueError):
                    parse_vkey(GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):
        changed = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(ValueError):
            parse_vkey(changed)


def test_c2sp_checkpoint_example_parses() -> None:
    # tlog-checkpoint.md's example note text.
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    origin, size, root = parse_checkpoint(text)
    assert (origin, size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint_text(origin, size, root) == text
    for bad in (
        "o\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
        "o\n12\n\n",
        "o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
    ):
        with pytest.raises(ValueError):
            parse_checkpoint(bad)
