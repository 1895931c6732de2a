;; wat-uppercase: a Sluice WebAssembly transformation written by hand in the
;; WebAssembly text format, from ABI.md alone (no SDK, no WASI import, no
;; language runtime). It upper-cases the ASCII letters of every record and
;; drops empty records.
;;
;;   wat2wasm -o uppercase.wasm examples/transforms/wat-uppercase/uppercase.wat
;;
;; Memory layout: bytes [0, 1024) hold constants; the input region starts at
;; 1024 with capacity $in_cap (set by sluice_alloc), and the output buffer
;; follows it. A result is never longer than its input record (1 + 4+id +
;; 4+data + 4 + 4 bytes against 4+id + 8 + 4+data + 4+metadata), and the
;; output header is no longer than the input header, so $in_cap bytes of
;; output space always suffice.
(module
  (memory (export "memory") 1)

  (data (i32.const 16) "bad input buffer")

  (global $in_base i32 (i32.const 1024))
  (global $in_cap (mut i32) (i32.const 0))

  (func (export "sluice_abi_version") (result i32)
    (i32.const 1))

  ;; sluice_alloc: make room for an input region of $size bytes at $in_base
  ;; and as much output after it; 0 when memory cannot grow.
  (func (export "sluice_alloc") (param $size i32) (result i32)
    (local $need i64)
    (local $pages i64)
    (local.set $need
      (i64.add (i64.const 1024)
        (i64.shl (i64.extend_i32_u (local.get $size)) (i64.const 1))))
    (if (i64.gt_u (local.get $need) (i64.const 0x100000000))
      (then (return (i32.const 0))))
    (local.set $pages (i64.shr_u (i64.add (local.get $need) (i64.const 0xFFFF)) (i64.const 16)))
    (if (i64.gt_u (local.get $pages) (i64.extend_i32_u (memory.size)))
      (then
        (if (i32.eq
              (memory.grow (i32.sub (i32.wrap_i64 (local.get $pages)) (memory.size)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $in_cap (local.get $size))
    (global.get $in_base))

  ;; $skip_str returns the offset after the str (u32 length + bytes) at $p.
  (func $skip_str (param $p i32) (result i32)
    (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))

  ;; $put_str writes the str of $len bytes at $src to $w, returns the offset
  ;; after it.
  (func $put_str (param $w i32) (param $src i32) (param $len i32) (result i32)
    (i32.store (local.get $w) (local.get $len))
    (memory.copy (i32.add (local.get $w) (i32.const 4)) (local.get $src) (local.get $len))
    (i32.add (i32.add (local.get $w) (i32.const 4)) (local.get $len)))

  (func (export "sluice_transform") (param $ptr i32) (param $len i32) (result i64)
    (local $r i32) (local $w i32) (local $out i32) (local $count i32) (local $i i32)
    (local $id i32) (local $id_len i32) (local $data i32) (local $data_len i32)
    (local $pairs i32) (local $j i32) (local $c i32) (local $x i64) (local $h i64)
    (local.set $out (i32.add (global.get $in_base) (global.get $in_cap)))
    ;; The header: "SLUI", version 1 (flags ignored).
    (if (i32.or
          (i32.lt_u (local.get $len) (i32.const 16))
          (i32.or
            (i32.ne (i32.load (local.get $ptr)) (i32.const 0x49554C53))
            (i32.ne (i32.load offset=4 (local.get $ptr)) (i32.const 1))))
      (then
        ;; Status 1: "SLUO", 1, 1, str message.
        (i32.store (local.get $out) (i32.const 0x4F554C53))
        (i32.store offset=4 (local.get $out) (i32.const 1))
        (i32.store offset=8 (local.get $out) (i32.const 1))
        (drop (call $put_str (i32.add (local.get $out) (i32.const 12)) (i32.const 16) (i32.const 16)))
        (return (i64.or
          (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
          (i64.const 32)))))
    (local.set $count (i32.load offset=12 (local.get $ptr)))
    ;; Skip invocation_id, delivery_stream_arn, region, source ARN.
    (local.set $r (call $skip_str (call $skip_str (call $skip_str (call $skip_str
      (i32.add (local.get $ptr) (i32.const 16)))))))
    ;; Output header: "SLUO", version 1, status 0, count.
    (i32.store (local.get $out) (i32.const 0x4F554C53))
    (i32.store offset=4 (local.get $out) (i32.const 1))
    (i32.store offset=8 (local.get $out) (i32.const 0))
    (i32.store offset=12 (local.get $out) (local.get $count))
    (local.set $w (i32.add (local.get $out) (i32.const 16)))
    (block $done
      (loop $records
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        ;; record_id str, arrival_ms i64, data bytes, metadata map.
        (local.set $id_len (i32.load (local.get $r)))
        (local.set $id (i32.add (local.get $r) (i32.const 4)))
        (local.set $r (i32.add (i32.add (local.get $id) (local.get $id_len)) (i32.const 8)))
        (local.set $data_len (i32.load (local.get $r)))
        (local.set $data (i32.add (local.get $r) (i32.const 4)))
        (local.set $r (i32.add (local.get $data) (local.get $data_len)))
        (local.set $pairs (i32.load (local.get $r)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (local.set $j (i32.const 0))
        (block $meta_done
          (loop $meta
            (br_if $meta_done (i32.ge_u (local.get $j) (local.get $pairs)))
            (local.set $r (call $skip_str (call $skip_str (local.get $r))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $meta)))
        ;; The result: code, record_id, data.
        (i32.store8 (local.get $w) (select (i32.const 1) (i32.const 0) (i32.eqz (local.get $data_len))))
        (local.set $w (call $put_str (i32.add (local.get $w) (i32.const 1)) (local.get $id) (local.get $id_len)))
        (if (i32.eqz (local.get $data_len))
          (then
            ;; Dropped: data 0xFFFFFFFF.
            (i32.store (local.get $w) (i32.const -1))
            (local.set $w (i32.add (local.get $w) (i32.const 4))))
          (else
            ;; Ok: the data, a-z mapped to A-Z, eight bytes at a time:
            ;; with h = x & 0x7f.., a byte is a lower-case letter when
            ;; h + 0x1f sets its top bit (h >= 'a'), h + 0x05 does not
            ;; (h <= 'z') and x's top bit is clear (ASCII); no carry
            ;; crosses bytes. Its 0x20 bit is then flipped.
            (i32.store (local.get $w) (local.get $data_len))
            (local.set $w (i32.add (local.get $w) (i32.const 4)))
            (local.set $j (i32.const 0))
            (block $words_done
              (loop $words
                (br_if $words_done (i32.lt_u (i32.sub (local.get $data_len) (local.get $j)) (i32.const 8)))
                (local.set $x (i64.load (i32.add (local.get $data) (local.get $j))))
                (local.set $h (i64.and (local.get $x) (i64.const 0x7f7f7f7f7f7f7f7f)))
                (i64.store (i32.add (local.get $w) (local.get $j))
                  (i64.xor (local.get $x)
                    (i64.shr_u
                      (i64.and
                        (i64.and
                          (i64.add (local.get $h) (i64.const 0x1f1f1f1f1f1f1f1f))
                          (i64.xor (i64.add (local.get $h) (i64.const 0x0505050505050505)) (i64.const -1)))
                        (i64.and (i64.xor (local.get $x) (i64.const -1)) (i64.const 0x8080808080808080)))
                      (i64.const 2))))
                (local.set $j (i32.add (local.get $j) (i32.const 8)))
                (br $words)))
            ;; The last bytes one at a time.
            (block $bytes_done
              (loop $bytes
                (br_if $bytes_done (i32.ge_u (local.get $j) (local.get $data_len)))
                (local.set $c (i32.load8_u (i32.add (local.get $data) (local.get $j))))
                (if (i32.lt_u (i32.sub (local.get $c) (i32.const 0x61)) (i32.const 26))
                  (then (local.set $c (i32.sub (local.get $c) (i32.const 0x20)))))
                (i32.store8 (i32.add (local.get $w) (local.get $j)) (local.get $c))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $bytes)))
            (local.set $w (i32.add (local.get $w) (local.get $data_len)))))
        ;; partition_keys: none; message: "".
        (i64.store (local.get $w) (i64.const 0))
        (local.set $w (i32.add (local.get $w) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $w) (local.get $out)))))
)
