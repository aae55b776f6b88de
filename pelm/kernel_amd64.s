//go:build amd64 && !purego

#include "textflag.h"

// Scoring kernels: see kernel.go for the contract and for the order of
// accumulation, which every kernel of one width follows exactly, so that a
// score never depends on the call that computed it.
//
// Register use, AVX-512 and AVX2 alike:
//	SI, R8, R9, R10  the four queries (dot4), SI the query (dot1)
//	DI, R11-R13      the rows of the current group
//	AX               byte offset within a row
//	BX               stride in bytes
//	CX               bytes covered by whole vectors (stride rounded down)
//	DX               out, advancing with the rows
//	R14              ostride in bytes (dot4)
//	R15              rows left
//	K1               AVX-512: mask of the tail's floats

// REDUCE16 sums the 16 lanes of accumulator z (y its lower half) in the
// order of kernel.go and stores the score at dst. Clobbers X0, X1.
#define REDUCE16(z, y, dst) \
	VEXTRACTF64X4 $1, z, Y0 \
	VADDPS        Y0, y, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPS        X1, X0, X0 \
	VPERMILPS     $0x0e, X0, X1 \
	VADDPS        X1, X0, X0 \
	VMOVSHDUP     X0, X1 \
	VADDSS        X1, X0, X0 \
	VMOVSS        X0, dst

// REDUCE8 sums the 8 lanes of accumulator y (x its lower half) in the
// order of kernel.go and stores the score at dst. Clobbers X0, X1.
#define REDUCE8(y, x, dst) \
	VEXTRACTF128 $1, y, X0 \
	VADDPS       X0, x, X0 \
	VPERMILPS    $0x0e, X0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVSHDUP    X0, X1 \
	VADDSS       X1, X0, X0 \
	VMOVSS       X0, dst

// FMA4x1_512 adds the products of the four queries in Z0-Z3 with the row in
// zr to accumulators a0-a3.
#define FMA4x1_512(zr, a0, a1, a2, a3) \
	VFMADD231PS Z0, zr, a0 \
	VFMADD231PS Z1, zr, a1 \
	VFMADD231PS Z2, zr, a2 \
	VFMADD231PS Z3, zr, a3

#define FMA4x1_256(yr, a0, a1, a2, a3) \
	VFMADD231PS Y0, yr, a0 \
	VFMADD231PS Y1, yr, a1 \
	VFMADD231PS Y2, yr, a2 \
	VFMADD231PS Y3, yr, a3

// PAIR512 folds accumulators a and b into a: with the shuffle sh, lo
// gathers the parts of a and b to add to the parts hi gathers.
#define PAIR512(lo, hi, sh, a, b) \
	sh     lo, b, a, Z0 \
	sh     hi, b, a, Z1 \
	VADDPS Z1, Z0, a

// SETUP512 loads the common arguments and sets K1 to the tail mask.
#define SETUP512 \
	MOVQ  stride+32(FP), BX \
	MOVQ  BX, CX \
	ANDQ  $15, CX \
	MOVL  $1, R15 \
	SHLL  CX, R15 \
	DECL  R15 \
	KMOVW R15, K1 \
	SHLQ  $2, BX \
	MOVQ  BX, CX \
	ANDQ  $-64, CX \
	MOVQ  rows+8(FP), DI \
	MOVQ  out+16(FP), DX \
	MOVQ  nrows+24(FP), R15

#define SETUP256 \
	MOVQ stride+32(FP), BX \
	SHLQ $2, BX \
	MOVQ BX, CX \
	ANDQ $-32, CX \
	MOVQ rows+8(FP), DI \
	MOVQ out+16(FP), DX \
	MOVQ nrows+24(FP), R15

// func dot4AVX512(q, rows, out, max *float32, nrows, stride, ostride int)
//
// nrows ≥ 4. Accumulator Z(16+4r+q) holds query q against row r of the
// current group of four rows. A last group of one to three rows is taken
// as the last four rows, recomputing (to the same bits) a few scores.
TEXT ·dot4AVX512(SB), NOSPLIT, $0-56
	MOVQ         stride+40(FP), BX
	MOVQ         BX, CX
	ANDQ         $15, CX
	MOVL         $1, R15
	SHLL         CX, R15
	DECL         R15
	KMOVW        R15, K1
	MOVL         $0x1111, AX
	KMOVW        AX, K2
	MOVL         $0xff800000, AX // -Inf
	VPBROADCASTD AX, Z8          // running maxima, lane q for query q
	SHLQ         $2, BX
	MOVQ         BX, CX
	ANDQ         $-64, CX
	MOVQ         q+0(FP), SI
	LEAQ         (SI)(BX*1), R8
	LEAQ         (SI)(BX*2), R9
	LEAQ         (R8)(BX*2), R10
	MOVQ         rows+8(FP), DI
	MOVQ         out+16(FP), DX
	MOVQ         nrows+32(FP), R15

d4z_group:
	LEAQ   (DI)(BX*1), R11
	LEAQ   (DI)(BX*2), R12
	LEAQ   (R11)(BX*2), R13
	LEAQ   (DI)(BX*4), R14 // the next four rows, prefetched as these are read
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d4z_tail

d4z_loop:
	PREFETCHT0 (R14)(AX*4)
	PREFETCHT0 64(R14)(AX*4)
	PREFETCHT0 128(R14)(AX*4)
	PREFETCHT0 192(R14)(AX*4)
	VMOVUPS (SI)(AX*1), Z0
	VMOVUPS (R8)(AX*1), Z1
	VMOVUPS (R9)(AX*1), Z2
	VMOVUPS (R10)(AX*1), Z3
	VMOVUPS (DI)(AX*1), Z4
	VMOVUPS (R11)(AX*1), Z5
	VMOVUPS (R12)(AX*1), Z6
	VMOVUPS (R13)(AX*1), Z7
	FMA4x1_512(Z4, Z16, Z17, Z18, Z19)
	FMA4x1_512(Z5, Z20, Z21, Z22, Z23)
	FMA4x1_512(Z6, Z24, Z25, Z26, Z27)
	FMA4x1_512(Z7, Z28, Z29, Z30, Z31)
	ADDQ    $64, AX
	CMPQ    AX, CX
	JLT     d4z_loop

d4z_tail:
	CMPQ      AX, BX
	JGE       d4z_reduce
	VMOVUPS.Z (SI)(AX*1), K1, Z0
	VMOVUPS.Z (R8)(AX*1), K1, Z1
	VMOVUPS.Z (R9)(AX*1), K1, Z2
	VMOVUPS.Z (R10)(AX*1), K1, Z3
	VMOVUPS.Z (DI)(AX*1), K1, Z4
	VMOVUPS.Z (R11)(AX*1), K1, Z5
	VMOVUPS.Z (R12)(AX*1), K1, Z6
	VMOVUPS.Z (R13)(AX*1), K1, Z7
	FMA4x1_512(Z4, Z16, Z17, Z18, Z19)
	FMA4x1_512(Z5, Z20, Z21, Z22, Z23)
	FMA4x1_512(Z6, Z24, Z25, Z26, Z27)
	FMA4x1_512(Z7, Z28, Z29, Z30, Z31)

d4z_reduce:
	// The 16 sums at once, by the tree of REDUCE16. Level 1, lanes i
	// and i+8: Z16, Z18, ..., Z30 hold [A(2k) | A(2k+1)], 8 floats each.
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z16, Z17)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z18, Z19)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z20, Z21)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z22, Z23)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z24, Z25)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z26, Z27)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z28, Z29)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z30, Z31)
	// Level 2, lanes i and i+4: Z16, Z20, Z24, Z28 hold 4 floats of each
	// of A(4m) ... A(4m+3) in their 128-bit lanes.
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z16, Z18)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z20, Z22)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z24, Z26)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z28, Z30)
	// Level 3, lanes i and i+2: lane L of Z16 holds 2 floats of A(L) and
	// of A(4+L), of Z24 of A(8+L) and A(12+L).
	PAIR512($0x44, $0xEE, VSHUFPS, Z16, Z20)
	PAIR512($0x44, $0xEE, VSHUFPS, Z24, Z28)
	// Level 4: lane q of Z16 holds the scores of query q and rows 0-3.
	PAIR512($0x88, $0xDD, VSHUFPS, Z16, Z24)
	MOVQ          ostride+48(FP), R14
	SHLQ          $2, R14
	LEAQ          (DX)(R14*2), R13
	ADDQ          R14, R13
	VMOVUPS       X16, (DX)
	VEXTRACTF32X4 $1, Z16, (DX)(R14*1)
	VEXTRACTF32X4 $2, Z16, (DX)(R14*2)
	VEXTRACTF32X4 $3, Z16, (R13)
	VMAXPS        Z16, Z8, Z8
	ADDQ          $16, DX
	LEAQ          (DI)(BX*4), DI
	SUBQ          $4, R15
	JEQ           d4z_done
	CMPQ          R15, $4
	JGE           d4z_group
	// 1 to 3 rows left: step back to the last four rows.
	MOVQ  $4, AX
	SUBQ  R15, AX
	MOVQ  AX, R11
	IMULQ BX, R11
	SUBQ  R11, DI
	SHLQ  $2, AX
	SUBQ  AX, DX
	MOVQ  $4, R15
	JMP   d4z_group

d4z_done:
	// Each lane's maximum, then lane q's to max[q].
	VPERMILPS   $0x4e, Z8, Z9
	VMAXPS      Z9, Z8, Z8
	VPERMILPS   $0xb1, Z8, Z9
	VMAXPS      Z9, Z8, Z8
	MOVQ        max+24(FP), AX
	VCOMPRESSPS Z8, K2, (AX)
	VZEROUPPER
	RET

// func dot4BF16(q, rows *uint16, out, max *float32, nrows, stride, ostride int)
//
// dot4AVX512 on bfloat16 vectors (stride a multiple of 32 values, so no
// tail), accumulating in float32 with VDPBF16PS (AVX512_BF16), which the Go
// assembler does not know: each is spelled out in bytes, its operands in
// the comment. The scores are approximations for the first pass only.
TEXT ·dot4BF16(SB), NOSPLIT, $0-56
	MOVQ         stride+40(FP), BX
	MOVL         $0x1111, AX
	KMOVW        AX, K2
	MOVL         $0xff800000, AX // -Inf
	VPBROADCASTD AX, Z8          // running maxima, lane q for query q
	SHLQ         $1, BX
	MOVQ         BX, CX
	MOVQ         q+0(FP), SI
	LEAQ         (SI)(BX*1), R8
	LEAQ         (SI)(BX*2), R9
	LEAQ         (R8)(BX*2), R10
	MOVQ         rows+8(FP), DI
	MOVQ         out+16(FP), DX
	MOVQ         nrows+32(FP), R15

d4b_group:
	LEAQ   (DI)(BX*1), R11
	LEAQ   (DI)(BX*2), R12
	LEAQ   (R11)(BX*2), R13
	LEAQ   (DI)(BX*4), R14 // the next four rows, prefetched as these are read
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d4b_reduce

d4b_loop:
	PREFETCHT0 (R14)(AX*4)
	PREFETCHT0 64(R14)(AX*4)
	PREFETCHT0 128(R14)(AX*4)
	PREFETCHT0 192(R14)(AX*4)
	VMOVUPS (SI)(AX*1), Z0
	VMOVUPS (R8)(AX*1), Z1
	VMOVUPS (R9)(AX*1), Z2
	VMOVUPS (R10)(AX*1), Z3
	VMOVUPS (DI)(AX*1), Z4
	VMOVUPS (R11)(AX*1), Z5
	VMOVUPS (R12)(AX*1), Z6
	VMOVUPS (R13)(AX*1), Z7
	BYTE $0x62; BYTE $0xe2; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xc4 // VDPBF16PS Z4, Z0, Z16
	BYTE $0x62; BYTE $0xe2; BYTE $0x76; BYTE $0x48; BYTE $0x52; BYTE $0xcc // VDPBF16PS Z4, Z1, Z17
	BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xd4 // VDPBF16PS Z4, Z2, Z18
	BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xdc // VDPBF16PS Z4, Z3, Z19
	BYTE $0x62; BYTE $0xe2; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xe5 // VDPBF16PS Z5, Z0, Z20
	BYTE $0x62; BYTE $0xe2; BYTE $0x76; BYTE $0x48; BYTE $0x52; BYTE $0xed // VDPBF16PS Z5, Z1, Z21
	BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xf5 // VDPBF16PS Z5, Z2, Z22
	BYTE $0x62; BYTE $0xe2; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xfd // VDPBF16PS Z5, Z3, Z23
	BYTE $0x62; BYTE $0x62; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xc6 // VDPBF16PS Z6, Z0, Z24
	BYTE $0x62; BYTE $0x62; BYTE $0x76; BYTE $0x48; BYTE $0x52; BYTE $0xce // VDPBF16PS Z6, Z1, Z25
	BYTE $0x62; BYTE $0x62; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xd6 // VDPBF16PS Z6, Z2, Z26
	BYTE $0x62; BYTE $0x62; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xde // VDPBF16PS Z6, Z3, Z27
	BYTE $0x62; BYTE $0x62; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xe7 // VDPBF16PS Z7, Z0, Z28
	BYTE $0x62; BYTE $0x62; BYTE $0x76; BYTE $0x48; BYTE $0x52; BYTE $0xef // VDPBF16PS Z7, Z1, Z29
	BYTE $0x62; BYTE $0x62; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xf7 // VDPBF16PS Z7, Z2, Z30
	BYTE $0x62; BYTE $0x62; BYTE $0x66; BYTE $0x48; BYTE $0x52; BYTE $0xff // VDPBF16PS Z7, Z3, Z31
	ADDQ    $64, AX
	CMPQ    AX, CX
	JLT     d4b_loop

d4b_reduce:
	// The 16 sums at once, by the tree of REDUCE16. Level 1, lanes i
	// and i+8: Z16, Z18, ..., Z30 hold [A(2k) | A(2k+1)], 8 floats each.
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z16, Z17)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z18, Z19)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z20, Z21)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z22, Z23)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z24, Z25)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z26, Z27)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z28, Z29)
	PAIR512($0x44, $0xEE, VSHUFF32X4, Z30, Z31)
	// Level 2, lanes i and i+4: Z16, Z20, Z24, Z28 hold 4 floats of each
	// of A(4m) ... A(4m+3) in their 128-bit lanes.
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z16, Z18)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z20, Z22)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z24, Z26)
	PAIR512($0x88, $0xDD, VSHUFF32X4, Z28, Z30)
	// Level 3, lanes i and i+2: lane L of Z16 holds 2 floats of A(L) and
	// of A(4+L), of Z24 of A(8+L) and A(12+L).
	PAIR512($0x44, $0xEE, VSHUFPS, Z16, Z20)
	PAIR512($0x44, $0xEE, VSHUFPS, Z24, Z28)
	// Level 4: lane q of Z16 holds the scores of query q and rows 0-3.
	PAIR512($0x88, $0xDD, VSHUFPS, Z16, Z24)
	MOVQ          ostride+48(FP), R14
	SHLQ          $2, R14
	LEAQ          (DX)(R14*2), R13
	ADDQ          R14, R13
	VMOVUPS       X16, (DX)
	VEXTRACTF32X4 $1, Z16, (DX)(R14*1)
	VEXTRACTF32X4 $2, Z16, (DX)(R14*2)
	VEXTRACTF32X4 $3, Z16, (R13)
	VMAXPS        Z16, Z8, Z8
	ADDQ          $16, DX
	LEAQ          (DI)(BX*4), DI
	SUBQ          $4, R15
	JEQ           d4b_done
	CMPQ          R15, $4
	JGE           d4b_group
	// 1 to 3 rows left: step back to the last four rows.
	MOVQ  $4, AX
	SUBQ  R15, AX
	MOVQ  AX, R11
	IMULQ BX, R11
	SUBQ  R11, DI
	SHLQ  $2, AX
	SUBQ  AX, DX
	MOVQ  $4, R15
	JMP   d4b_group

d4b_done:
	// Each lane's maximum, then lane q's to max[q].
	VPERMILPS   $0x4e, Z8, Z9
	VMAXPS      Z9, Z8, Z8
	VPERMILPS   $0xb1, Z8, Z9
	VMAXPS      Z9, Z8, Z8
	MOVQ        max+24(FP), AX
	VCOMPRESSPS Z8, K2, (AX)
	VZEROUPPER
	RET

// func dot1AVX512(q, rows, out *float32, nrows, stride int) (max float32)
TEXT ·dot1AVX512(SB), NOSPLIT, $0-44
	SETUP512
	MOVQ q+0(FP), SI
	MOVL $0xff800000, AX // -Inf
	VMOVD AX, X8         // running maximum
	CMPQ R15, $4
	JLT  d1z_one

d1z_group:
	LEAQ   (DI)(BX*1), R11
	LEAQ   (DI)(BX*2), R12
	LEAQ   (R11)(BX*2), R13
	LEAQ   (DI)(BX*4), R14 // the next four rows, prefetched as these are read
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d1z_tail

d1z_loop:
	PREFETCHT0  (R14)(AX*4)
	PREFETCHT0  64(R14)(AX*4)
	PREFETCHT0  128(R14)(AX*4)
	PREFETCHT0  192(R14)(AX*4)
	VMOVUPS     (SI)(AX*1), Z0
	VFMADD231PS (DI)(AX*1), Z0, Z16
	VFMADD231PS (R11)(AX*1), Z0, Z17
	VFMADD231PS (R12)(AX*1), Z0, Z18
	VFMADD231PS (R13)(AX*1), Z0, Z19
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         d1z_loop

d1z_tail:
	CMPQ        AX, BX
	JGE         d1z_reduce
	VMOVUPS.Z   (SI)(AX*1), K1, Z0
	VMOVUPS.Z   (DI)(AX*1), K1, Z4
	VMOVUPS.Z   (R11)(AX*1), K1, Z5
	VMOVUPS.Z   (R12)(AX*1), K1, Z6
	VMOVUPS.Z   (R13)(AX*1), K1, Z7
	VFMADD231PS Z4, Z0, Z16
	VFMADD231PS Z5, Z0, Z17
	VFMADD231PS Z6, Z0, Z18
	VFMADD231PS Z7, Z0, Z19

d1z_reduce:
	REDUCE16(Z16, Y16, (DX))
	VMAXSS X0, X8, X8
	REDUCE16(Z17, Y17, 4(DX))
	VMAXSS X0, X8, X8
	REDUCE16(Z18, Y18, 8(DX))
	VMAXSS X0, X8, X8
	REDUCE16(Z19, Y19, 12(DX))
	VMAXSS X0, X8, X8
	ADDQ $16, DX
	LEAQ (DI)(BX*4), DI
	SUBQ $4, R15
	CMPQ R15, $4
	JGE  d1z_group

d1z_one:
	TESTQ R15, R15
	JEQ   d1z_done

d1z_row:
	VPXORD Z16, Z16, Z16
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d1z_rowtail

d1z_rowloop:
	VMOVUPS     (SI)(AX*1), Z0
	VFMADD231PS (DI)(AX*1), Z0, Z16
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         d1z_rowloop

d1z_rowtail:
	CMPQ        AX, BX
	JGE         d1z_rowreduce
	VMOVUPS.Z   (SI)(AX*1), K1, Z0
	VMOVUPS.Z   (DI)(AX*1), K1, Z4
	VFMADD231PS Z4, Z0, Z16

d1z_rowreduce:
	REDUCE16(Z16, Y16, (DX))
	VMAXSS X0, X8, X8
	ADDQ $4, DX
	ADDQ BX, DI
	DECQ R15
	JNZ  d1z_row

d1z_done:
	VMOVSS X8, max+40(FP)
	VZEROUPPER
	RET

// func dot4AVX2(q, rows, out *float32, nrows, stride, ostride int)
//
// Accumulators: Y6-Y9 the four queries against the first row of the pair,
// Y10-Y13 against the second.
TEXT ·dot4AVX2(SB), NOSPLIT, $0-48
	SETUP256
	MOVQ q+0(FP), SI
	LEAQ (SI)(BX*1), R8
	LEAQ (SI)(BX*2), R9
	LEAQ (R8)(BX*2), R10
	MOVQ ostride+40(FP), R14
	SHLQ $2, R14
	CMPQ R15, $2
	JLT  d4y_one

d4y_group:
	LEAQ  (DI)(BX*1), R11
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	XORQ  AX, AX
	CMPQ  AX, CX
	JGE   d4y_tail

d4y_loop:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS (R8)(AX*1), Y1
	VMOVUPS (R9)(AX*1), Y2
	VMOVUPS (R10)(AX*1), Y3
	VMOVUPS (DI)(AX*1), Y4
	VMOVUPS (R11)(AX*1), Y5
	FMA4x1_256(Y4, Y6, Y7, Y8, Y9)
	FMA4x1_256(Y5, Y10, Y11, Y12, Y13)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     d4y_loop

d4y_tail:
	CMPQ    AX, BX
	JGE     d4y_reduce
	VMOVUPS (SI)(AX*1), X0 // 4 floats; VEX zeroes the upper half
	VMOVUPS (R8)(AX*1), X1
	VMOVUPS (R9)(AX*1), X2
	VMOVUPS (R10)(AX*1), X3
	VMOVUPS (DI)(AX*1), X4
	VMOVUPS (R11)(AX*1), X5
	FMA4x1_256(Y4, Y6, Y7, Y8, Y9)
	FMA4x1_256(Y5, Y10, Y11, Y12, Y13)

d4y_reduce:
	LEAQ (DX)(R14*2), R13
	ADDQ R14, R13
	REDUCE8(Y6, X6, (DX))
	REDUCE8(Y7, X7, (DX)(R14*1))
	REDUCE8(Y8, X8, (DX)(R14*2))
	REDUCE8(Y9, X9, (R13))
	REDUCE8(Y10, X10, 4(DX))
	REDUCE8(Y11, X11, 4(DX)(R14*1))
	REDUCE8(Y12, X12, 4(DX)(R14*2))
	REDUCE8(Y13, X13, 4(R13))
	ADDQ $8, DX
	LEAQ (DI)(BX*2), DI
	SUBQ $2, R15
	CMPQ R15, $2
	JGE  d4y_group

d4y_one:
	TESTQ R15, R15
	JEQ   d4y_done
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	XORQ  AX, AX
	CMPQ  AX, CX
	JGE   d4y_onetail

d4y_oneloop:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS (R8)(AX*1), Y1
	VMOVUPS (R9)(AX*1), Y2
	VMOVUPS (R10)(AX*1), Y3
	VMOVUPS (DI)(AX*1), Y4
	FMA4x1_256(Y4, Y6, Y7, Y8, Y9)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     d4y_oneloop

d4y_onetail:
	CMPQ    AX, BX
	JGE     d4y_onereduce
	VMOVUPS (SI)(AX*1), X0
	VMOVUPS (R8)(AX*1), X1
	VMOVUPS (R9)(AX*1), X2
	VMOVUPS (R10)(AX*1), X3
	VMOVUPS (DI)(AX*1), X4
	FMA4x1_256(Y4, Y6, Y7, Y8, Y9)

d4y_onereduce:
	LEAQ (DX)(R14*2), R13
	ADDQ R14, R13
	REDUCE8(Y6, X6, (DX))
	REDUCE8(Y7, X7, (DX)(R14*1))
	REDUCE8(Y8, X8, (DX)(R14*2))
	REDUCE8(Y9, X9, (R13))

d4y_done:
	VZEROUPPER
	RET

// func dot1AVX2(q, rows, out *float32, nrows, stride int)
TEXT ·dot1AVX2(SB), NOSPLIT, $0-40
	SETUP256
	MOVQ q+0(FP), SI
	CMPQ R15, $4
	JLT  d1y_one

d1y_group:
	LEAQ   (DI)(BX*1), R11
	LEAQ   (DI)(BX*2), R12
	LEAQ   (R11)(BX*2), R13
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d1y_tail

d1y_loop:
	VMOVUPS     (SI)(AX*1), Y0
	VFMADD231PS (DI)(AX*1), Y0, Y6
	VFMADD231PS (R11)(AX*1), Y0, Y7
	VFMADD231PS (R12)(AX*1), Y0, Y8
	VFMADD231PS (R13)(AX*1), Y0, Y9
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         d1y_loop

d1y_tail:
	CMPQ        AX, BX
	JGE         d1y_reduce
	VMOVUPS     (SI)(AX*1), X0
	VMOVUPS     (DI)(AX*1), X2
	VMOVUPS     (R11)(AX*1), X3
	VMOVUPS     (R12)(AX*1), X4
	VMOVUPS     (R13)(AX*1), X5
	VFMADD231PS Y2, Y0, Y6
	VFMADD231PS Y3, Y0, Y7
	VFMADD231PS Y4, Y0, Y8
	VFMADD231PS Y5, Y0, Y9

d1y_reduce:
	REDUCE8(Y6, X6, (DX))
	REDUCE8(Y7, X7, 4(DX))
	REDUCE8(Y8, X8, 8(DX))
	REDUCE8(Y9, X9, 12(DX))
	ADDQ $16, DX
	LEAQ (DI)(BX*4), DI
	SUBQ $4, R15
	CMPQ R15, $4
	JGE  d1y_group

d1y_one:
	TESTQ R15, R15
	JEQ   d1y_done

d1y_row:
	VXORPS Y6, Y6, Y6
	XORQ   AX, AX
	CMPQ   AX, CX
	JGE    d1y_rowtail

d1y_rowloop:
	VMOVUPS     (SI)(AX*1), Y0
	VFMADD231PS (DI)(AX*1), Y0, Y6
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         d1y_rowloop

d1y_rowtail:
	CMPQ        AX, BX
	JGE         d1y_rowreduce
	VMOVUPS     (SI)(AX*1), X0
	VMOVUPS     (DI)(AX*1), X2
	VFMADD231PS Y2, Y0, Y6

d1y_rowreduce:
	REDUCE8(Y6, X6, (DX))
	ADDQ $4, DX
	ADDQ BX, DI
	DECQ R15
	JNZ  d1y_row

d1y_done:
	VZEROUPPER
	RET

// func prefetch(p *float32, n int)
TEXT ·prefetch(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), CX
	ADDQ AX, CX

pf_loop:
	PREFETCHT0 (AX)
	ADDQ       $64, AX
	CMPQ       AX, CX
	JLT        pf_loop
	RET
