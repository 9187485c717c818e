// Plays a VRM Animation (.vrma) on a VRM model with three-vrm, as a web page would, and prints
// the world position of every humanoid bone (raw bones, metres) at the given times as JSON.
//   node play_vrma.mjs MODEL.vrm ANIMATION.vrma T1 [T2 ...]
import { readFileSync } from 'node:fs';
import * as THREE from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
import { VRMLoaderPlugin } from '@pixiv/three-vrm';
import { VRMAnimationLoaderPlugin, createVRMAnimationClip } from '@pixiv/three-vrm-animation';

const [modelPath, animationPath, ...times] = process.argv.slice(2);

function load(path, plugin) {
  const bytes = readFileSync(path);
  const loader = new GLTFLoader();
  loader.register(plugin);
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new Promise((resolve, reject) => loader.parse(data, '', resolve, reject));
}

const vrm = (await load(modelPath, (parser) => new VRMLoaderPlugin(parser))).userData.vrm;
const animations = (await load(animationPath, (parser) => new VRMAnimationLoaderPlugin(parser))).userData
  .vrmAnimations;
const clip = createVRMAnimationClip(animations[0], vrm);
const mixer = new THREE.AnimationMixer(vrm.scene);
mixer.clipAction(clip).play();

const bones = Object.keys(vrm.humanoid.humanBones);
const frames = [];
const at = new THREE.Vector3();
for (const t of times.map(Number)) {
  mixer.setTime(t);
  vrm.update(0); // normalized bones -> raw bones
  vrm.scene.updateMatrixWorld(true);
  const positions = {};
  for (const bone of bones) positions[bone] = vrm.humanoid.getRawBoneNode(bone).getWorldPosition(at).toArray();
  frames.push({ t, positions });
}
console.log(JSON.stringify({ duration: clip.duration, tracks: clip.tracks.length, frames }));
