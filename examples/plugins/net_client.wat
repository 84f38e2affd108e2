;; Talks to the echo server the policy allows and is denied a forbidden host. Its input is
;; the echo server's port as two bytes, little-endian (default 7000 when there is no input).
;; Prints the echoed reply, then the result code of the forbidden connect.
(module
  (import "sandbox" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_connect" (func $connect (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandbox" "net_recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (import "sandbox" "net_close" (func $close (param i32) (result i32)))
  (import "sandbox" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo.test")          ;; 9
  (data (i32.const 32) "ping from the sandbox\n") ;; 22
  (data (i32.const 64) "forbidden.example") ;; 17
  (data (i32.const 96) "-0\n")
  (data (i32.const 128) "\58\1b")           ;; 7000 little-endian
  ;; 1024: port from input, 2048: reply buffer
  (func $check (param $result i32) (result i32)
    (if (i32.lt_s (local.get $result) (i32.const 0)) (then unreachable))
    (local.get $result))
  (func (export "_start")
    (local $port i32) (local $conn i32) (local $n i32) (local $got i32) (local $code i32)
    (local.set $port
      (if (result i32) (i32.eq (call $input_read (i32.const 1024) (i32.const 2) (i32.const 0)) (i32.const 2))
        (then (i32.load16_u (i32.const 1024)))
        (else (i32.load16_u (i32.const 128)))))
    (local.set $conn (call $check (call $connect (i32.const 0) (i32.const 9) (local.get $port))))
    (drop (call $check (call $send (local.get $conn) (i32.const 32) (i32.const 22))))
    ;; read until the whole line is back
    (block $done
      (loop $more
        (local.set $n (call $check (call $recv (local.get $conn) (i32.add (i32.const 2048) (local.get $got)) (i32.sub (i32.const 22) (local.get $got)) (i32.const 1000))))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $got (i32.add (local.get $got) (local.get $n)))
        (br_if $more (i32.lt_u (local.get $got) (i32.const 22)))))
    (drop (call $output_write (i32.const 2048) (local.get $got)))
    (drop (call $check (call $close (local.get $conn))))
    ;; a host no rule allows
    (local.set $code (call $connect (i32.const 64) (i32.const 17) (i32.const 443)))
    (i32.store8 (i32.const 97) (i32.sub (i32.const 48) (local.get $code)))
    (drop (call $output_write (i32.const 96) (i32.const 3)))))
