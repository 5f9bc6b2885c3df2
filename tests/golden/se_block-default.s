.npuc 1
.contents insns=69 data=1996 sha256=1e03f68a9885c1740fce3b7344cac4833ddd3bedd382edafb226f29e13761868
.hw rows=16 cols=16 dataflow="ws" fold_overlap=true int4_pack=2 act16_passes=2 spad_kib=256 acc_kib=64 dram_bw=16 dram_latency=100 vec_lanes=16 vec_latency=4 lanes=0 taps=9 clock_mhz=1000.0 weight_granularity="per_channel" act_mode="asymmetric" scale_rule="pow2" rounding="half_even" zero_point="even" acc_bits=32 mac_pj=0.3 spad_read_pj=2.5 spad_write_pj=2.5 acc_read_pj=2.5 acc_write_pj=2.5 dram_pj=160.0 vector_pj=3.1 pe_mm2=0.0012 spad_mm2_per_kib=0.0039 acc_mm2_per_kib=0.0049
.dram 4416
.tensor name="x" role=input addr=0x0 shape=1,3,6,6 layout=nhwc scale=0.03125 zp=-22
.tensor name="y" role=output addr=0x1080 shape=1,5 layout=flat scale=0.001953125 zp=28
.layer 0 "conv1" macs=7776 bytes=612
.layer 1 "conv2" macs=20736 bytes=1152
.layer 2 "residual"
.layer 3 "hswish"
.layer 4 "squeeze"
.layer 5 "reduce" macs=32 bytes=44
.layer 6 "expand" macs=32 bytes=44
.layer 7 "gate"
.layer 8 "excite"
.layer 9 "pool"
.layer 10 "fc" macs=40 bytes=53
.data 0x000001c0 02c52f3ef71b1ce4a51bff647fe51eb5f8d7f7f601e00108e72c1e401a32094122d81d231def10b9b51a580f10252c1f1c13f4bfe9dcdb001736e6dbef0bf817
.data 0x00000200 a12817c127d8f6e743b6bec2b9411bcb4d3311a8d8fb281822ab1fdc2ddc1d11f1f5a9b168fab602f911fb4ed7a1050f13dcb2fb975adad2fd23270cb9e806b3
.data 0x00000240 29c1360f0935e80dd81ffbe8e313e4ca3c021e1c42280ad6fbf6d5e4e00c0f1bd5063e13eb63bffae6db11f103def8c6ed0c1815f3fcea31df442cf5b969dc27
.data 0x00000280 25f1ea4b41c8e958f6df1eff361c132fe914ce3b1d170e12
.data 0x000002c0 2bfdffff9cfeffff300c00004e07000090040000d414000069f9ffffa8f2ffff0100000001000000010000000100000001000000010000000100000001000000
.data 0x00000300 0700000007000000070000000700000007000000070000000700000007000000
.data 0x000005c0 0cf1f3d2f92fbae0420aeeea240cdffca70513c70b1107162b06f131412d2af8161ce81803e404eeba0612e32424fa001c200506b70ee9ec14dd37e7bcc128e2
.data 0x00000600 a7f5fccc30cad9ef09c91ef732191ad4ebe5fd48c731f4e32dac0b16092ee531b5ff1720eafa19248deff82022fadfe109b50423c2ff23e7e301fbea2efd0ee8
.data 0x00000640 320c1720d10f221e12ffe908e41303f5e7190dfa1e343404db13e9293dd6f728b8102cf3eae103de261fd3ee0af2f1e0c0311707f7f13d2311070f05232402d6
.data 0x00000680 c2d00bf61de81f2bf0f7350e4d4519fbf358daffff0ac70c3f500beaae073207de1bffd2f3040ad124fefd0a1dd53e15f30ddcf4c9fdefc4efbeeb0bf1cbfb22
.data 0x000006c0 a4050af3b40822f61bdd0c21a203dc1a3cff3016c93b14f27afc0dd1af2700e81e0affdb14d91be5d6ed1dea9f1014c812f9fe160e0beada111dd416ba4a14ff
.data 0x00000700 656d0f29f6ca2cca233104fac832f3ee2a04f0b41502f70725fb100743d12f074af51ec1dbfc49ea0a11fff6c8070ad5d53841e14d09efdda1d3e91f86f924f4
.data 0x00000740 d6f90e1cfe1e06058d06fdf541eedff1f3e9eee01dd5f8ece9262f15de0afac85d06f90341e0fe06e6e8f3dd09ff00ea470bdadaf5ecee4b1511f109c5dcd5f7
.data 0x00000780 c7dd000456ced239e60eef33d1f618e468ffb904cbe3da1d30e60b1ce01bebefff27f01e5031f52910ac030bcc0ee5dc2110cef66644ef25d8fc2718500c1d24
.data 0x000007c0 fed9eff2adb1e903cceb081144dbe5ea39e90d1623fbdef64c3afafe41220c01152626fdfffa0d0f03fad524aff5fc095c2bd3e1112c2dd4500ef8f72fb62ad6
.data 0x00000800 ce9a0000a35f00009619000025f8ffff709dffff0c1b000045730000f3fcfeff0100000001000000010000000100000001000000010000000100000001000000
.data 0x00000840 0900000008000000080000000800000009000000080000000800000008000000
.data 0x000009c0 81818181808080808080808080808080808181818181828282828383838484858586868787888889898a8b8b8c8d8e8e8f90919292939495969798999a9b9c9d
.data 0x00000a00 9ea0a1a2a3a4a6a7a8a9abacadafb0b2b3b5b6b8b9bbbcbebfc1c3c4c6c8cacbcdcfd1d3d4d6d8dadcdee0e2e4e6e8eaeceff1f3f5f7fafcfe000305070a0c0f
.data 0x00000a40 111416191b1e202325282b2d303336383b3e414446494c4f5255585a5c5e60626466686a6c6e70727476787a7c7e7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f
.data 0x00000a80 7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f
.data 0x00000b00 a00e0000a00e0000a00e0000a00e0000a00e0000a00e0000a00e0000a00e0000721cc771721cc771721cc771721cc771721cc771721cc771721cc771721cc771
.data 0x00000b40 2200000022000000220000002200000022000000220000002200000022000000
.data 0x00000bc0 88fb5006c0352e2ce0d62a1d3483d2163fea071718611275ab15c60c3df79b2f
.data 0x00000c00 620f0000aef5ffffa60200007d7400000100000001000000010000000100000008000000070000000800000007000000
.data 0x00000c80 6cb3f7c524064445144891455efdf5eb17f0c0a23c492008069201110fd7e009
.data 0x00000cc0 6d56000069c4ffff15aaffff37ebffff63530000c71100003afdffff112200000100000001000000010000000100000001000000010000000100000001000000
.data 0x00000d00 0700000007000000070000000700000007000000070000000800000006000000
.data 0x00000d80 dadadadadbdbdbdbdcdcdcdcdcdddddddddededededfdfdfdfdfe0e0e0e0e1e1e1e1e2e2e2e2e3e3e3e3e3e4e4e4e4e5e5e5e5e6e6e6e6e7e7e7e7e8e8e8e8e9
.data 0x00000dc0 e9e9e9e9eaeaeaeaebebebebececececededededeeeeeeeeefefefeff0f0f0f0f1f1f1f1f2f2f2f2f3f3f3f3f4f4f4f4f5f5f5f5f6f6f6f6f7f7f7f7f8f8f8f8
.data 0x00000e00 f9f9f9f9fafafafafbfbfbfbfcfcfcfcfdfdfdfdfefefefeffffffff000000000001010101020202020303030304040404050505050606060607070707080808
.data 0x00000e40 08090909090a0a0a0a0b0b0b0b0c0c0c0c0d0d0d0d0e0e0e0e0f0f0f0f1010101011111111121212121313131314141414151515151616161617171717171818
.data 0x00001000 580e0000580e0000580e0000580e0000580e0000580e0000580e0000580e0000721cc771721cc771721cc771721cc771721cc771721cc771721cc771721cc771
.data 0x00001040 2200000022000000220000002200000022000000220000002200000022000000
.data 0x000010c0 cba227fc11d5ed1110dcfef46e1103403804d1e31b61eb3c9e0ec407d3ce4071c32904d64716b91d
.data 0x00001100 85e4ffff0dfdffff5f110000e5efffff6fbaffff01000000010000000100000001000000010000000700000007000000070000000700000007000000

@layer 0  ; conv1
lda   dst=0 src=704 n0=1 n1=24 ss0=0 ds0=0
ld    dst=224 src=0 n0=2 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=1 pb=0 pl=1 pr=1 fill=-22
ld    dst=296 src=0 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-22
ld    dst=368 src=18 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-22
ld    dst=440 src=36 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-22
ld    dst=512 src=54 n0=3 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=0 pl=1 pr=1 fill=-22
ld    dst=584 src=72 n0=2 n1=6 n2=3 ss0=18 ss1=3 ds0=3 ds1=9 pt=0 pb=1 pl=1 pr=1 fill=-22
ld    dst=0 src=448 n0=1 n1=1 n2=216 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=48 a=224 w=0 m0=6 m1=6 k=16 n=8 as0=9 as1=72 ws=8 ds0=8 ds1=48 acc=2 bias=0 w4=0 a16=0 wait=0
gemm  dst=48 a=240 w=128 m0=6 m1=6 k=11 n=8 as0=9 as1=72 ws=8 ds0=8 ds1=48 acc=1 bias=0 w4=0 a16=0 signal=1
vrq   dst=1120 src=48 mul=8 sh=16 m=36 n=8 ds=8 ss=8 zp=-128 lo=-128 hi=127 rnd=0 signal=2
st    dst=128 src=1120 n0=6 n1=6 n2=8 ds0=48 ds1=8 ss0=48 ss1=8 wait=2 signal=4

@layer 1  ; conv2
lda   dst=8192 src=2048 n0=1 n1=24 ss0=0 ds0=0
ld    dst=131648 src=128 n0=2 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=1 pb=0 pl=1 pr=1 fill=-128 wait=4
ld    dst=131840 src=128 n0=3 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=0 pb=0 pl=1 pr=1 fill=-128
ld    dst=132032 src=176 n0=3 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=0 pb=0 pl=1 pr=1 fill=-128
ld    dst=132224 src=224 n0=3 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=0 pb=0 pl=1 pr=1 fill=-128
ld    dst=132416 src=272 n0=3 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=0 pb=0 pl=1 pr=1 fill=-128
ld    dst=132608 src=320 n0=2 n1=6 n2=8 ss0=48 ss1=8 ds0=8 ds1=24 pt=0 pb=1 pl=1 pr=1 fill=-128
ld    dst=131072 src=1472 n0=1 n1=1 n2=576 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=8240 a=131648 w=131072 m0=6 m1=6 k=16 n=8 as0=24 as1=192 ws=8 ds0=8 ds1=48 acc=2 bias=8192 w4=0 a16=0 wait=0
gemm  dst=8240 a=131664 w=131200 m0=6 m1=6 k=16 n=8 as0=24 as1=192 ws=8 ds0=8 ds1=48 acc=1 bias=8192 w4=0 a16=0
gemm  dst=8240 a=131680 w=131328 m0=6 m1=6 k=16 n=8 as0=24 as1=192 ws=8 ds0=8 ds1=48 acc=1 bias=8192 w4=0 a16=0
gemm  dst=8240 a=131696 w=131456 m0=6 m1=6 k=16 n=8 as0=24 as1=192 ws=8 ds0=8 ds1=48 acc=1 bias=8192 w4=0 a16=0
gemm  dst=8240 a=131712 w=131584 m0=6 m1=6 k=8 n=8 as0=24 as1=192 ws=8 ds0=8 ds1=48 acc=1 bias=8192 w4=0 a16=0
vrq   dst=133952 src=8240 mul=8200 sh=8208 m=36 n=8 ds=8 ss=8 zp=-12 lo=-128 hi=127 rnd=0 signal=1

@layer 2  ; residual
ld    dst=134528 src=128 n0=6 n1=6 n2=8 ss0=48 ss1=8 ds0=48 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
vadd  dst=133952 a=134528 b=133952 m=1 n=288 ds=288 as=288 bs=288 za=-128 zb=-12 ma=1 mb=1 sh=1 zp=-70 lo=-128 hi=127 rnd=0 wait=0 signal=2
st    dst=1152 src=133952 n0=6 n1=6 n2=8 ds0=48 ds1=8 ss0=48 ss1=8 wait=2 signal=4

@layer 3  ; hswish
ld    dst=0 src=2496 n0=1 n1=1 n2=256 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 wait=1
ld    dst=256 src=1152 n0=1 n1=36 n2=8 ss0=0 ss1=8 ds0=288 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 wait=4 signal=0,5
vlut  dst=256 src=256 tab=0 m=1 n=288 ds=288 ss=288 ts=0 wait=0 signal=1,2
st    dst=2176 src=256 n0=1 n1=36 n2=8 ds0=0 ds1=8 ss0=288 ss1=8 wait=2,5 signal=3,4

@layer 4  ; squeeze
lda   dst=8192 src=2816 n0=3 n1=8 ss0=32 ds0=8 wait=1
ld    dst=131072 src=2176 n0=1 n1=36 n2=8 ss0=0 ss1=8 ds0=0 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 wait=4 signal=0,5
vsum  dst=8216 src=131072 m=36 n=8 ss=8 acc=0 wait=0
vaddv dst=8216 src=8216 vec=8192 m=1 n=8 ds=0 ss=0
vrq   dst=131648 src=8216 mul=8200 sh=8208 m=1 n=8 ds=0 ss=0 zp=-88 lo=-128 hi=127 rnd=0 signal=1,2
st    dst=2752 src=131648 n0=1 n1=1 n2=8 ds0=0 ds1=0 ss0=0 ss1=0 wait=2 signal=4

@layer 5  ; reduce
lda   dst=0 src=3072 n0=1 n1=12 ss0=0 ds0=0
ld    dst=32 src=2752 n0=1 n1=1 n2=8 ss0=8 ss1=8 ds0=8 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=-88 wait=1,4
ld    dst=0 src=3008 n0=1 n1=1 n2=32 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=32 a=32 w=0 m0=1 m1=1 k=8 n=4 as0=8 as1=8 ws=4 ds0=4 ds1=4 acc=2 bias=0 w4=0 a16=0 wait=0 signal=1
vrq   dst=262112 src=32 mul=4 sh=8 m=1 n=4 ds=4 ss=4 zp=-128 lo=-128 hi=127 rnd=0

@layer 6  ; expand
lda   dst=8192 src=3264 n0=1 n1=24 ss0=0 ds0=0 wait=1
ld    dst=131072 src=3200 n0=1 n1=1 n2=32 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=8240 a=262112 w=131072 m0=1 m1=1 k=4 n=8 as0=4 as1=4 ws=8 ds0=8 ds1=8 acc=2 bias=8192 w4=0 a16=0 wait=0
vrq   dst=131104 src=8240 mul=8200 sh=8208 m=1 n=8 ds=8 ss=8 zp=30 lo=-128 hi=127 rnd=0 signal=1,2
st    dst=3136 src=131104 n0=1 n1=1 n2=8 ds0=8 ds1=8 ss0=8 ss1=8 wait=2,5 signal=3,4

@layer 7  ; gate
ld    dst=0 src=3456 n0=1 n1=1 n2=256 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 wait=1
ld    dst=256 src=3136 n0=1 n1=1 n2=8 ss0=8 ss1=8 ds0=8 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 wait=4 signal=0,5
vlut  dst=256 src=256 tab=0 m=1 n=8 ds=8 ss=8 ts=0 wait=0,3 signal=1,2
st    dst=3392 src=256 n0=1 n1=1 n2=8 ds0=8 ds1=8 ss0=8 ss1=8 wait=2,5 signal=4

@layer 8  ; excite
ld    dst=131104 src=2176 n0=1 n1=36 n2=8 ss0=0 ss1=8 ds0=288 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 wait=1 signal=5
ld    dst=131072 src=3392 n0=1 n1=1 n2=8 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 wait=4 signal=0
vmul  dst=131104 a=131104 b=131072 m=36 n=8 ds=8 as=8 bs=0 za=-104 zb=-128 mul=1 sh=7 zp=-102 lo=-128 hi=127 rnd=0 wait=0,3 signal=1,2
st    dst=3712 src=131104 n0=1 n1=36 n2=8 ds0=0 ds1=8 ss0=288 ss1=8 wait=2,5 signal=3,4

@layer 9  ; pool
lda   dst=0 src=4096 n0=3 n1=8 ss0=32 ds0=8
ld    dst=0 src=3712 n0=1 n1=36 n2=8 ss0=0 ss1=8 ds0=0 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=0 wait=1,4 signal=0
vsum  dst=24 src=0 m=36 n=8 ss=8 acc=0 wait=0
vaddv dst=24 src=24 vec=0 m=1 n=8 ds=0 ss=0
vrq   dst=576 src=24 mul=8 sh=16 m=1 n=8 ds=0 ss=0 zp=-86 lo=-128 hi=127 rnd=0 signal=2
st    dst=4032 src=576 n0=1 n1=1 n2=8 ds0=0 ds1=0 ss0=0 ss1=0 wait=2 signal=4

@layer 10  ; fc
lda   dst=8192 src=4352 n0=1 n1=15 ss0=0 ds0=0
ld    dst=131136 src=4032 n0=1 n1=1 n2=8 ss0=8 ss1=8 ds0=8 ds1=8 pt=0 pb=0 pl=0 pr=0 fill=-86 wait=1,4
ld    dst=131072 src=4288 n0=1 n1=1 n2=40 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=8224 a=131136 w=131072 m0=1 m1=1 k=8 n=5 as0=8 as1=8 ws=5 ds0=5 ds1=5 acc=2 bias=8192 w4=0 a16=0 wait=0
vrq   dst=131200 src=8224 mul=8197 sh=8202 m=1 n=5 ds=5 ss=5 zp=28 lo=-128 hi=127 rnd=0 wait=3 signal=2
st    dst=4224 src=131200 n0=1 n1=1 n2=5 ds0=5 ds1=5 ss0=5 ss1=5 wait=2
