;; Tries a dozen things policies/demo.yaml forbids and prints each result code on its own
;; line ("ok" or the negative code). Completes, with many deny events.
(module
  (import "sandbox" "fs_read" (func $fs_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "sandbox" "fs_write" (func $fs_write (param i32 i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_stat" (func $fs_stat (param i32 i32 i32) (result i32)))
  (import "sandbox" "fs_list" (func $fs_list (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "fs_delete" (func $fs_delete (param i32 i32) (result i32)))
  (import "sandbox" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 3)
  (data (i32.const 0) "/etc/passwd")                  ;; 11
  (data (i32.const 32) "/data/../../etc/passwd")      ;; 22
  (data (i32.const 64) "/data/secret/key.txt")        ;; 20
  (data (i32.const 96) "/data/hello.txt")             ;; 15
  (data (i32.const 128) "/out/notes.txt")             ;; 14
  (data (i32.const 160) "/out/big.log")               ;; 12
  (data (i32.const 192) "/data-secret/x")             ;; 14
  (data (i32.const 224) "/out/.keep")                 ;; 10
  (data (i32.const 256) "/data/a\00b")                ;; 9
  (data (i32.const 288) "/out")                       ;; 4
  (data (i32.const 320) "/data/escape")               ;; 12
  (data (i32.const 352) "ok\n")
  (data (i32.const 356) "-0\n")
  ;; 4096: scratch buffer; 65536..: 70 KiB of data for the over-quota write
  (func $report (param $code i32)
    (if (i32.ge_s (local.get $code) (i32.const 0))
      (then (drop (call $output_write (i32.const 352) (i32.const 3))))
      (else
        (i32.store8 (i32.const 357) (i32.sub (i32.const 48) (local.get $code)))
        (drop (call $output_write (i32.const 356) (i32.const 3))))))
  (func (export "_start")
    ;; outside every mount
    (call $report (call $fs_read (i32.const 0) (i32.const 11) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; `..` escape
    (call $report (call $fs_read (i32.const 32) (i32.const 22) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; deny rule
    (call $report (call $fs_read (i32.const 64) (i32.const 20) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; metadata of a denied file
    (call $report (call $fs_stat (i32.const 64) (i32.const 20) (i32.const 4096)))
    ;; write to a read-only mount
    (call $report (call $fs_write (i32.const 96) (i32.const 15) (i32.const 4096) (i32.const 4) (i32.const 0)))
    ;; no rule allows `.txt` in /out
    (call $report (call $fs_write (i32.const 128) (i32.const 14) (i32.const 4096) (i32.const 4) (i32.const 0)))
    ;; 70 KiB against a 64 KiB write quota: refused whole
    (call $report (call $fs_write (i32.const 160) (i32.const 12) (i32.const 65536) (i32.const 71680) (i32.const 0)))
    ;; prefix accident: /data-secret is not under /data
    (call $report (call $fs_read (i32.const 192) (i32.const 14) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; no rule allows delete
    (call $report (call $fs_delete (i32.const 224) (i32.const 10)))
    ;; NUL byte in the path
    (call $report (call $fs_read (i32.const 256) (i32.const 9) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; no rule allows listing /out
    (call $report (call $fs_list (i32.const 288) (i32.const 4) (i32.const 4096) (i32.const 64)))
    ;; a symlink in the mount that points outside it
    (call $report (call $fs_read (i32.const 320) (i32.const 12) (i64.const 0) (i32.const 4096) (i32.const 64)))
    ;; a pointer past the end of memory
    (call $report (call $fs_read (i32.const 0xfffffff0) (i32.const 100) (i64.const 0) (i32.const 4096) (i32.const 64)))))
