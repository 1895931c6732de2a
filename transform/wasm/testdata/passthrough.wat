;; passthrough.wat: a pass-through guest of ABI.md version 1 in WebAssembly
;; text, used by the tests and benchmarks. Every record comes back Ok with
;; its recordId; its data is copied when the global $copy is 1 (the tests
;; rewrite the initialiser) and marked unchanged otherwise.
(module
  (memory (export "memory") 2)
  (global $copy i32 (i32.const 1))
  (global $in (mut i32) (i32.const 0))
  (global $cap (mut i32) (i32.const 0))
  (func (export "sluice_abi_version") (result i32) (i32.const 1))

  ;; The input region starts at 64 KiB; the output goes after it, so the
  ;; memory holds 64 KiB + 2 × size (the output is never larger than the
  ;; input plus 13 bytes per record, and records take at least 24 bytes).
  (func (export "sluice_alloc") (param $size i32) (result i32)
    (local $need i32)
    (local.set $need (i32.add (i32.const 65536) (i32.shl (local.get $size) (i32.const 1))))
    (if (i32.gt_u (local.get $need) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.lt_s
              (memory.grow (i32.sub (i32.shr_u (i32.add (local.get $need) (i32.const 65535)) (i32.const 16)) (memory.size)))
              (i32.const 0))
          (then (return (i32.const 0))))))
    (global.set $cap (local.get $size))
    (i32.const 65536))

  (func $skip (param $p i32) (result i32)
    (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))

  (func (export "sluice_transform") (param $ptr i32) (param $len i32) (result i64)
    (local $p i32) (local $n i32) (local $i i32) (local $m i32)
    (local $out i32) (local $o i32)
    (local $id i32) (local $idlen i32) (local $data i32) (local $dlen i32)
    (local.set $n (i32.load offset=12 (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 16)))
    (local.set $p (call $skip (call $skip (call $skip (call $skip (local.get $p))))))
    (local.set $out (i32.add (i32.const 65536) (global.get $cap)))
    (i32.store (local.get $out) (i32.const 0x4F554C53)) ;; "SLUO"
    (i32.store offset=4 (local.get $out) (i32.const 1))
    (i32.store offset=8 (local.get $out) (i32.const 0))
    (i32.store offset=12 (local.get $out) (local.get $n))
    (local.set $o (i32.add (local.get $out) (i32.const 16)))
    (block $done
      (loop $rec
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $idlen (i32.load (local.get $p)))
        (local.set $id (i32.add (local.get $p) (i32.const 4)))
        (local.set $p (i32.add (i32.add (local.get $id) (local.get $idlen)) (i32.const 8)))
        (local.set $dlen (i32.load (local.get $p)))
        (local.set $data (i32.add (local.get $p) (i32.const 4)))
        (local.set $p (i32.add (local.get $data) (local.get $dlen)))
        (local.set $m (i32.shl (i32.load (local.get $p)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (block $mdone
          (loop $meta
            (br_if $mdone (i32.eqz (local.get $m)))
            (local.set $p (call $skip (local.get $p)))
            (local.set $m (i32.sub (local.get $m) (i32.const 1)))
            (br $meta)))
        ;; result Ok, record_id
        (i32.store8 (local.get $o) (i32.const 0))
        (i32.store offset=1 (local.get $o) (local.get $idlen))
        (memory.copy (i32.add (local.get $o) (i32.const 5)) (local.get $id) (local.get $idlen))
        (local.set $o (i32.add (i32.add (local.get $o) (i32.const 5)) (local.get $idlen)))
        (if (global.get $copy)
          (then
            (i32.store (local.get $o) (local.get $dlen))
            (memory.copy (i32.add (local.get $o) (i32.const 4)) (local.get $data) (local.get $dlen))
            (local.set $o (i32.add (i32.add (local.get $o) (i32.const 4)) (local.get $dlen))))
          (else
            (i32.store (local.get $o) (i32.const -1))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))))
        ;; no partition keys, empty message
        (i64.store (local.get $o) (i64.const 0))
        (local.set $o (i32.add (local.get $o) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rec)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $o) (local.get $out))))))
