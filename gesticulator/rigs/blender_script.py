"""Runs inside Blender's Python, never in gesticulator's: bpy, mathutils and the standard library
(numpy only as Blender's own, for one Debian fix below).

`gesticulator.rigs.blender` starts it in a separate process, either way:

    python-with-bpy blender_script.py -- MODE JSON
    blender -b --factory-startup --python-exit-code 1 --python blender_script.py -- MODE JSON

MODE is one of
- ``fbx``: import a BVH (optionally a GLB whose skinned mesh fits the BVH's rest pose), give the
  armature a mesh and export an FBX that Unity (Humanoid) and Unreal import cleanly;
- ``inspect``: import an FBX in a fresh scene and describe it (bones, frames, fps, actions);
- ``render``: import an FBX, BVH or GLB and render frames to PNG (the docs' screenshots).

JSON holds the mode's keyword arguments. The answer is one stdout line ``GESTICULATOR_RESULT
{json}``; a failure prints ``GESTICULATOR_ERROR message`` on stderr and exits 1. Both markers are
also defined in gesticulator/rigs/blender.py (this file cannot import gesticulator).

Written for bpy 5.0 and Debian's Blender 3.4: operator keywords that a version lacks are dropped
(`_call`), and two bugs of Debian 12's Blender 3.4 on its Python 3.11 / numpy 1.24 are worked
around (`_patch_bvh_reader`, `_patch_numpy_for_gltf`), so one script serves both.
"""

import json
import math
import re
import sys
import traceback

import bpy
from mathutils import Vector

RESULT = "GESTICULATOR_RESULT "
ERROR = "GESTICULATOR_ERROR "
ARMATURE_NAME = "Armature"  # Unreal drops an FBX root node of this name instead of adding a bone


# -- helpers ---------------------------------------------------------------------------------------


def _call(op, **kwargs):
    """Run an operator with only the keywords this Blender knows (3.4 and 5.0 differ a little)."""
    known = {p.identifier for p in op.get_rna_type().properties}
    result = op(**{k: v for k, v in kwargs.items() if k in known})
    if "FINISHED" not in result:
        raise RuntimeError(f"{op.idname_py()} did not finish: {sorted(result)}")
    return result


def _fresh_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _patch_bvh_reader()
    return bpy.context.scene


def _patch_bvh_reader():
    """Debian's Blender 3.4 runs on Python 3.11, whose open() no longer takes the "rU" mode its BVH
    importer asks for (ValueError: invalid mode: 'rU'): give that module an open() without "U"."""
    try:
        from io_anim_bvh import import_bvh  # an add-on Blender enables on factory startup
    except ImportError:
        return
    if getattr(import_bvh, "open", None) is None:
        import builtins

        def open_without_u(file, mode="r", *args, **kwargs):
            return builtins.open(file, mode.replace("U", ""), *args, **kwargs)

        import_bvh.open = open_without_u  # module globals come before builtins


def _armatures():
    return [o for o in bpy.data.objects if o.type == "ARMATURE"]


def _set_fps(scene, fps):
    """Scene rate from the motion's: integer rates exactly (30, not 30.0000000003 from a rounded
    BVH Frame Time), others as Blender stores them (fps / fps_base, e.g. 30 / 1.001)."""
    whole = round(fps)
    if abs(fps - whole) < 1e-3 * fps:
        scene.render.fps, scene.render.fps_base = int(whole), 1.0
    else:
        scene.render.fps, scene.render.fps_base = int(whole), whole / fps


def _import_bvh(path, scale, fps, up="Y", forward="Z"):
    """Import a BVH whose figure stands along `up` and faces `forward` (file axes, e.g. "Y", "-Z"),
    turned so it stands on Blender's Z and faces -Y (Blender's front view; the FBX writer turns
    that into Y up, facing +Z: what Unity's Humanoid and Unreal's importer expect)."""
    scene = bpy.context.scene
    # The importer's axis_forward is the file axis that becomes Blender's +Y: the figure's back.
    back = forward[1:] if forward.startswith("-") else "-" + forward
    _call(
        bpy.ops.import_anim.bvh,
        filepath=path,
        global_scale=scale,
        frame_start=1,  # the importer's minimum; moved to 0 below
        use_fps_scale=False,  # one key per BVH frame
        update_scene_fps=False,  # set below from the exact rate instead
        rotate_mode="NATIVE",
        axis_forward=back,
        axis_up=up,
    )
    _set_fps(scene, fps)
    arm = _armatures()[0]
    # Frame 0 first, so FBX time 0 is the first pose, as in the GLB and as Unity and Unreal
    # clips start (the BVH importer starts at frame 1 at the earliest).
    for fcurve in _fcurves(arm.animation_data.action):
        for key in fcurve.keyframe_points:
            key.co.x -= 1.0
            key.handle_left.x -= 1.0
            key.handle_right.x -= 1.0
        fcurve.update()
    return arm


def _fcurves(action):
    """An action's F-curves: in its layers since Blender 4.4 (5.0 dropped `action.fcurves`)."""
    if getattr(action, "layers", None):
        for layer in action.layers:
            for strip in layer.strips:
                for bag in strip.channelbags:
                    yield from bag.fcurves
    else:
        yield from action.fcurves


def _frame_range(arm):
    action = arm.animation_data.action if arm.animation_data else None
    if action is None:
        raise RuntimeError(f"{arm.name} has no animation")
    start, end = (int(round(f)) for f in action.frame_range)
    return action, start, end


def _skinned_meshes(objects):
    return [o for o in objects if o.type == "MESH" and any(m.type == "ARMATURE" for m in o.modifiers)]


def _bind_to(mesh, arm):
    """Skin `mesh` to `arm` (its vertex groups name bones), keeping its place in the world."""
    world = mesh.matrix_world.copy()
    mesh.parent = arm
    mesh.matrix_world = world
    mods = [m for m in mesh.modifiers if m.type == "ARMATURE"] or [mesh.modifiers.new("Armature", "ARMATURE")]
    for mod in mods:
        mod.object = arm


# -- meshes ------------------------------------------------------------------------------------------


def build_stand_in(arm, name="StandIn"):
    """A rigidly skinned octahedron (Blender's bone shape) from each joint to each of its children,
    or to its tip for a leaf, so the FBX has a skeletal mesh (Unreal imports a skeleton only with
    one) and a render has something to draw. One per child link, not per bone: Blender's bone for
    a joint with several children (hips, chest) only points at their average and looks broken."""
    verts, faces = [], []
    groups = {}  # bone name -> vertex indices
    for bone in arm.data.bones:
        ends = [child.head_local for child in bone.children] or [bone.tail_local]
        for end in ends:
            octahedron = _octahedron(bone.head_local, end)
            if octahedron is None:
                continue
            points, tris = octahedron
            base = len(verts)
            verts += points
            faces += [tuple(base + i for i in tri) for tri in tris]
            groups.setdefault(bone.name, []).extend(range(base, base + len(points)))
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(v) for v in verts], [], faces)
    mesh.update()
    mesh.materials.append(_stand_in_material())
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = arm.matrix_world.copy()  # vertices are in armature space
    for bone_name, indices in groups.items():
        obj.vertex_groups.new(name=bone_name).add(indices, 1.0, "REPLACE")
    _bind_to(obj, arm)
    return obj


_RING = ((1, 0), (0, 1), (-1, 0), (0, -1))


def _octahedron(head, tail):
    """Six points and eight outward-facing triangles from `head` to `tail` (None when they meet),
    widest a fifth of the way along, a tenth of the length across (Blender's proportions)."""
    axis = tail - head
    length = axis.length
    if length < 1e-6:
        return None
    u = axis.orthogonal().normalized()
    w = axis.normalized().cross(u)
    ring_centre = head + axis * 0.2
    points = [head.copy(), tail.copy()] + [ring_centre + (u * c + w * s) * (0.1 * length) for c, s in _RING]
    centre = head + axis * 0.5
    tris = []
    for k in range(4):
        a, b = 2 + k, 2 + (k + 1) % 4
        for tri in ((0, a, b), (1, b, a)):
            p0, p1, p2 = (points[i] for i in tri)
            normal = (p1 - p0).cross(p2 - p0)
            # Outward normals, so engines that cull back faces (Unity, Unreal) show the outside.
            tris.append(tri if normal.dot((p0 + p1 + p2) / 3 - centre) > 0 else (tri[0], tri[2], tri[1]))
    return points, tris


STAND_IN_COLOUR = (0.42, 0.52, 0.66, 1.0)  # linear RGB, the rig GLBs' steel blue (rigs/export.py)


def _stand_in_material():
    """Steel blue in the viewport (Workbench) and in the FBX (the exporter reads the Principled
    BSDF when the material has nodes, else the viewport colour)."""
    material = bpy.data.materials.new("StandIn")
    material.diffuse_color = STAND_IN_COLOUR
    tree = material.node_tree if material.use_nodes else None
    bsdf = tree.nodes.get("Principled BSDF") if tree else None
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = STAND_IN_COLOUR
    return material


def adopt_glb_mesh(arm, glb, tolerance):
    """Import `glb` and re-skin its mesh to `arm` when its skeleton's rest pose is `arm`'s (the
    SMPL-X GLB and BVH of one export are). Returns the meshes, or a reason why not."""
    before = set(bpy.data.objects)
    actions_before = set(bpy.data.actions)
    try:
        _patch_numpy_for_gltf()
        _call(bpy.ops.import_scene.gltf, filepath=glb)
        failed = None
    except RuntimeError as e:  # Debian's Blender has no numpy for its glTF importer unless installed
        failed = _one_line(e)
    new = [o for o in bpy.data.objects if o not in before]
    meshes = _skinned_meshes(new) if failed is None else []
    source = next((o for o in new if o.type == "ARMATURE"), None)
    reason = None
    if failed is not None:
        reason = f"Blender could not import it ({failed})"
    elif source is None or not meshes:
        reason = "it has no skinned mesh"
    else:
        shared = [b.name for b in source.data.bones if b.name in arm.data.bones]
        if len(shared) < len(source.data.bones) // 2:
            reason = "its bone names differ from the BVH's"
        else:
            off = max(
                (
                    source.matrix_world @ source.data.bones[n].head_local
                    - arm.matrix_world @ arm.data.bones[n].head_local
                ).length
                for n in shared
            )
            if off > tolerance:
                reason = f"its rest pose differs from the BVH's (by {off:.3f} m)"
    if reason is None:
        for mesh in meshes:
            _merge_unknown_groups(mesh, source, arm)
            _bind_to(mesh, arm)
    # Everything else the glTF brought (its armature, bone display shapes, its action) goes.
    for obj in new:
        if reason is not None or obj not in meshes:
            bpy.data.objects.remove(obj, do_unlink=True)
    for action in set(bpy.data.actions) - actions_before:
        bpy.data.actions.remove(action)
    return (meshes, None) if reason is None else ([], reason)


def _patch_numpy_for_gltf():
    """Debian's Blender 3.4 glTF importer uses `np.bool`, which numpy 1.24 (Debian 12's) removed
    and 2.0 brought back: alias it, in Blender's own process only."""
    try:
        import numpy  # Blender's numpy (bpy wheels bundle one; Debian's needs python3-numpy)
    except ImportError:
        return  # the import fails below with Blender's own message
    if "bool" not in numpy.__dict__:
        numpy.bool = numpy.bool_


def _merge_unknown_groups(mesh, source, arm):
    """Move weights of bones the BVH lacks (the GLB's zero-length hand joints at the wrists) to
    their nearest ancestor that it has, so no vertex is left behind when the mesh changes skeleton."""
    index = {g.index: g for g in mesh.vertex_groups}
    target = {}
    for group in mesh.vertex_groups:
        name = group.name
        bone = source.data.bones.get(name)
        while bone is not None and bone.name not in arm.data.bones:
            bone = bone.parent
        if name not in arm.data.bones:
            target[group.index] = bone.name if bone is not None else None
    if not target:
        return
    moved = {}  # (vertex, bone name) -> weight
    for v in mesh.data.vertices:
        for g in v.groups:
            dest = target.get(g.group)
            if dest is not None:
                moved[(v.index, dest)] = moved.get((v.index, dest), 0.0) + g.weight
    for gi in target:
        mesh.vertex_groups.remove(index[gi])
    for (vi, dest), weight in moved.items():
        group = mesh.vertex_groups.get(dest) or mesh.vertex_groups.new(name=dest)
        group.add([vi], weight, "ADD")


# -- modes -----------------------------------------------------------------------------------------


def to_fbx(bvh, fbx, scale, fps, take, glb=None, up="Y", forward="Z"):
    scene = _fresh_scene()
    arm = _import_bvh(bvh, scale, fps, up, forward)
    # Unreal treats an FBX root named "Armature" as the skeleton's container, not a bone; Unity
    # and Blender show it as the object holding the skeleton either way.
    arm.name = arm.data.name = ARMATURE_NAME
    action, start, end = _frame_range(arm)
    action.name = take
    scene.name = take  # the FBX take (Unity's clip, Unreal's AnimSequence) is named after the scene
    scene.frame_start, scene.frame_end = start, end

    note = None
    meshes = []
    if glb:
        # 2 mm: both files hold the same rest skeleton to about a micrometre (float32 in the GLB).
        meshes, note = adopt_glb_mesh(arm, glb, tolerance=0.002)
    mesh_source = "glb" if meshes else "stand-in"
    if not meshes:
        meshes = [build_stand_in(arm)]
    _set_fps(scene, fps)  # the glTF importer may have changed the scene's rate
    scene.frame_start, scene.frame_end = start, end
    # Baking steps through every frame, and Blender re-skins every enabled mesh at each step
    # (Blender 3.4: ~40 ms a frame for the mannequin). The exporter finds the skin from the
    # modifier whether it is shown or not and writes the rest mesh, so switch it off meanwhile.
    for mesh in meshes:
        for mod in mesh.modifiers:
            mod.show_viewport = mod.show_render = False

    _call(
        bpy.ops.export_scene.fbx,
        filepath=fbx,
        check_existing=False,
        use_selection=False,
        object_types={"ARMATURE", "MESH"},
        use_mesh_modifiers=False,  # the Armature modifier is the skin, not geometry to apply
        mesh_smooth_type="FACE",  # Unreal warns about missing smoothing groups otherwise
        add_leaf_bones=False,  # no "_end" bones: the skeleton is the rig's joints, nothing more
        primary_bone_axis="Y",
        secondary_bone_axis="X",
        armature_nodetype="NULL",
        use_armature_deform_only=False,  # every joint, weighted or not, is a bone of the rig
        bake_anim=True,
        bake_anim_use_all_bones=True,
        bake_anim_use_nla_strips=False,
        bake_anim_use_all_actions=False,  # one take: the scene's frame range
        bake_anim_force_startend_keying=True,
        bake_anim_step=1.0,
        bake_anim_simplify_factor=0.0,  # a key on every frame of every bone, as in the BVH
        # Transforms in metres with the file's unit set to metres (UnitScaleFactor 100), Y up,
        # facing +Z: Unity (Convert Units) and Unreal (which converts to its cm) both import the
        # armature at scale 1 (the default, FBX_SCALE_NONE, gives Unity's familiar 100x scale).
        global_scale=1.0,
        apply_unit_scale=True,
        apply_scale_options="FBX_SCALE_ALL",
        axis_forward="-Z",
        axis_up="Y",
        bake_space_transform=False,  # "experimental" in Blender and known to break armatures
        path_mode="AUTO",
        embed_textures=False,
        use_metadata=True,
    )
    return {
        "bones": len(arm.data.bones),
        "bone_names": [b.name for b in arm.data.bones],
        "frame_start": start,
        "frame_end": end,
        "fps": scene.render.fps / scene.render.fps_base,
        "mesh": mesh_source,
        "mesh_vertices": sum(len(m.data.vertices) for m in meshes),
        "note": note,
    }


def inspect(fbx, probe=None):
    scene = _fresh_scene()
    _call(
        bpy.ops.import_scene.fbx,
        filepath=fbx,
        anim_offset=0.0,  # frames as the file's times say (Blender's default shifts them by 1)
        ignore_leaf_bones=False,
        automatic_bone_orientation=False,
        use_custom_props=False,
    )
    armatures = _armatures()
    if not armatures:
        raise RuntimeError(f"{fbx} has no armature")
    arm = armatures[0]
    action = arm.animation_data.action if arm.animation_data else None
    start, end = (int(round(f)) for f in action.frame_range) if action else (None, None)
    heads = [arm.matrix_world @ b.head_local for b in arm.data.bones]
    out = {
        "armatures": len(armatures),
        "bone_names": [b.name for b in arm.data.bones],
        "frame_start": start,
        "frame_end": end,
        "fps": scene.render.fps / scene.render.fps_base,
        "actions": [a.name for a in bpy.data.actions],
        "meshes": len([o for o in bpy.data.objects if o.type == "MESH"]),
        "skinned_meshes": len(_skinned_meshes(bpy.data.objects)),
        "mesh_vertices": sum(len(o.data.vertices) for o in _skinned_meshes(bpy.data.objects)),
        "height": max(h.z for h in heads) - min(h.z for h in heads),  # metres, rest pose (Z up)
        "armature_scale": list(arm.matrix_world.to_scale()),
        "probe": None,
    }
    if probe is not None:
        bone, frame = probe
        scene.frame_set(int(frame))
        out["probe"] = list(arm.matrix_world @ arm.pose.bones[bone].head)
    return out


def render(
    source,
    frames,
    pngs,
    width=360,
    height=480,
    scale=0.01,
    fps=30.0,
    up="Y",
    forward="Z",
    azimuth=-25.0,
    elevation=8.0,
):
    """Render `frames` of `source` (FBX, BVH or GLB) with the Workbench engine, which runs
    headless; one camera framing every frame, so a strip of them lines up."""
    scene = _fresh_scene()
    lower = source.lower()
    if lower.endswith(".fbx"):
        _call(bpy.ops.import_scene.fbx, filepath=source, anim_offset=0.0)
    elif lower.endswith(".bvh"):
        _import_bvh(source, scale, fps, up, forward)
    else:
        _set_fps(scene, fps)  # the glTF importer turns seconds into frames at the scene's rate
        _call(bpy.ops.import_scene.gltf, filepath=source)
        for obj in [o for o in bpy.data.objects if o.type == "MESH" and not o.modifiers]:
            bpy.data.objects.remove(obj, do_unlink=True)  # the glTF importer's bone display shapes
    arm = _armatures()[0]
    meshes = _skinned_meshes(bpy.data.objects) or [build_stand_in(arm)]

    # Camera: orthographic, turned by `azimuth` from the figure's front (-Y in Blender), framing
    # the posed meshes of every frame with a margin.
    az, el = math.radians(azimuth), math.radians(elevation)
    view = Vector((math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), -math.sin(el)))  # toward figure
    rot = view.to_track_quat("-Z", "Y")
    right, up = rot @ Vector((1, 0, 0)), rot @ Vector((0, 1, 0))
    xs, ys, depth = [], [], []
    for frame in frames:
        scene.frame_set(int(frame))
        graph = bpy.context.evaluated_depsgraph_get()
        for obj in meshes:
            ev = obj.evaluated_get(graph)
            for v in ev.to_mesh().vertices:
                p = ev.matrix_world @ v.co
                xs.append(p.dot(right))
                ys.append(p.dot(up))
                depth.append(p.dot(view))
            ev.to_mesh_clear()
    cam_data = bpy.data.cameras.new("Camera")
    cam_data.type = "ORTHO"
    cam_data.sensor_fit = "VERTICAL"
    cam_data.ortho_scale = 1.08 * max(max(ys) - min(ys), (max(xs) - min(xs)) * height / width)
    cam_data.clip_end = 1000.0
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    centre = right * (max(xs) + min(xs)) / 2 + up * (max(ys) + min(ys)) / 2
    cam.location = centre + view * (min(depth) - 10.0)
    cam.rotation_mode = "QUATERNION"
    cam.rotation_quaternion = rot

    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_cavity = True
    shading.show_specular_highlight = True
    world = bpy.data.worlds.new("World")
    world.color = (0.92, 0.92, 0.92)
    scene.world = world
    scene.display.render_aa = "8"
    for frame, png in zip(frames, pngs, strict=True):
        scene.frame_set(int(frame))
        scene.render.filepath = png
        bpy.ops.render.render(write_still=True)
    return {"frames": list(frames), "pngs": list(pngs), "meshes": len(meshes)}


def _one_line(error):
    """An operator's error carries the add-on's whole traceback in its message: keep the line that
    names the exception (the last one, before Blender's "Location:")."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip() and not ln.startswith("Location:")]
    if any("Traceback (most recent call last)" in ln for ln in lines):
        named = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception): ", ln)]
        return (named or lines)[-1]
    return f"{type(error).__name__}: {' '.join(lines) or 'no message'}"


MODES = {"fbx": to_fbx, "inspect": inspect, "render": render}


def main(argv):
    args = argv[argv.index("--") + 1 :] if "--" in argv else []
    if len(args) != 2 or args[0] not in MODES:
        print(f"{ERROR}usage: blender_script.py -- {{{','.join(MODES)}}} JSON", file=sys.stderr, flush=True)
        sys.exit(2)
    try:
        result = MODES[args[0]](**json.loads(args[1]))
    except Exception as e:  # report every failure as one line the caller can show
        traceback.print_exc()
        print(ERROR + _one_line(e), file=sys.stderr, flush=True)
        sys.exit(1)
    print(RESULT + json.dumps(result), flush=True)


main(sys.argv)
